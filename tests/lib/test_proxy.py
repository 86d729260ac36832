from django.http import HttpResponse
from django.test import RequestFactory

from bosun.lib.proxy import ForwardedForMiddleware


def client_address(**headers: str) -> str:
    seen = {}

    def view(request):
        seen["address"] = request.META["REMOTE_ADDR"]
        return HttpResponse()

    ForwardedForMiddleware(view)(RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", **headers))
    return seen["address"]


def test_the_address_our_proxy_wrote_becomes_the_client_address():
    assert client_address(HTTP_X_FORWARDED_FOR="203.0.113.7") == "203.0.113.7"


def test_with_several_entries_the_last_one_counts_so_a_client_cannot_plant_its_own():
    assert client_address(HTTP_X_FORWARDED_FOR="10.0.0.1, 203.0.113.7") == "203.0.113.7"


def test_a_malformed_or_missing_header_changes_nothing():
    assert client_address(HTTP_X_FORWARDED_FOR="not-an-ip") == "127.0.0.1"
    assert client_address() == "127.0.0.1"
