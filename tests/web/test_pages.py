import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, SystemCheckFactory, UserFactory
from web.views import permission_denied, server_error

pytestmark = pytest.mark.django_db


def test_the_dashboard_sends_a_signed_out_visitor_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_signing_in_with_the_right_password_opens_the_dashboard(client):
    UserFactory(username="ada")
    response = client.post("/login/", {"username": "ada", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert b"System checks" in response.content


def test_a_wrong_password_is_reported_on_the_form(client):
    UserFactory(username="ada")
    response = client.post("/login/", {"username": "ada", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert b"alert-danger" in response.content


def test_the_layout_carries_htmx_csrf_headers_and_the_navigation(operator_client):
    html = operator_client.get("/").content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert "/static/django_htmx/htmx.min.js" in html or "htmx" in html
    assert 'aria-current="page"' in html and "Dashboard" in html
    # Sections that do not exist yet are not listed.
    assert "Parameter Store" not in html
    assert "Change management" not in html


def test_signing_out_takes_a_post_and_ends_the_session(operator_client):
    response = operator_client.post(reverse("logout"))
    assert response.status_code == 302
    assert operator_client.get("/").status_code == 302


def test_an_unknown_page_is_the_branded_404(operator_client):
    response = operator_client.get("/no/such/page")
    assert response.status_code == 404
    assert b"Page not found" in response.content
    assert b"Go to the dashboard" in response.content


def test_an_unknown_api_path_answers_in_json(operator_client):
    response = operator_client.get("/api/v1/nothing")
    assert response.status_code == 404
    assert response.json() == {"detail": "There is nothing at this address.", "code": "not_found"}


def test_a_denied_request_is_the_branded_403(rf, operator_user):
    request = rf.get("/")
    request.user = operator_user
    response = permission_denied(request)
    assert response.status_code == 403
    assert b"Access denied" in response.content


def test_the_server_error_page_renders_without_context(rf):
    response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.content


def test_the_me_endpoint_needs_a_session_or_an_access_key(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="bosun"'
    assert response.json()["detail"]


def test_the_me_endpoint_describes_the_caller(operator_client):
    assert operator_client.get("/api/v1/me").json()["username"] == "otto"


def test_a_user_sees_only_their_own_system_checks(operator_client, operator_user, outsider_user):
    SystemCheckFactory(requested_by=operator_user)
    theirs = SystemCheckFactory(requested_by=outsider_user)
    assert operator_client.get(f"/system-checks/{theirs.pk}/").status_code == 404
    assert b"check-" in operator_client.get("/").content


def test_requesting_a_system_check_needs_post_and_a_session(operator_client):
    assert Client().post("/system-checks/").status_code == 302
    assert operator_client.get("/system-checks/").status_code == 405


def test_the_worker_card_says_waiting_before_the_first_heartbeat(operator_client):
    assert b"No heartbeat yet" in operator_client.get("/dashboard/worker/").content


def test_a_stale_form_gets_the_branded_403_that_says_to_reload(operator_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)
    response = client.post("/system-checks/")
    assert response.status_code == 403
    assert b"Reload the page and try again" in response.content
