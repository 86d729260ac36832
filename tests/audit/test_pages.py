from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def rows(response) -> int:
    return response.content.decode().count('<tr id="event-')


# The signed-in clients' own sign-in is event 1 (force_login sends user_logged_in); the
# filters below keep to the trail's action where counts matter.
PUT = {"action": "ssm:PutParameter"}


def test_the_audit_page_lists_the_newest_events_first_fifty_to_a_page(admin_client, trail):
    trail(59)  # and the admin's sign-in: 60
    page = admin_client.get(reverse("audit:events"))
    html = page.content.decode()
    assert page.status_code == 200
    assert rows(page) == 50
    assert html.index('id="event-60"') < html.index('id="event-59"')
    assert "1\N{EN DASH}50 of" in html
    assert 'href="?page=2"' in html
    # ARNs read by their resource part, the whole ARN on hover.
    arn = "arn:aws:ssm:us-east-1:000000000000:parameter/app/db-host"
    assert f'title="{arn}">parameter/app/db-host</div>' in html
    second = admin_client.get(reverse("audit:events"), {"page": 2})
    assert rows(second) == 10
    assert 'id="event-1"' in second.content.decode()


def test_filters_narrow_the_list_and_survive_in_the_page_links(admin_client, trail):
    trail(55, principal="ada", action="ssm:PutParameter")
    trail(2, principal="access-key:AKIAEXAMPLE", action="ssm:GetParameter")
    trail(1, principal="otto", action="ssm:SendCommand", outcome="denied", resources=["mi-0a1b"])
    url = reverse("audit:events")
    assert rows(admin_client.get(url, {"who": "akiaex"})) == 2
    assert rows(admin_client.get(url, {"action": "ssm:GetParameter"})) == 2
    assert rows(admin_client.get(url, {"action": "ssm:Get"})) == 0
    assert rows(admin_client.get(url, {"action": "ssm:*", "outcome": "denied"})) == 1
    assert rows(admin_client.get(url, {"resource": "MI-0A"})) == 1
    paged = admin_client.get(url, {"who": "ada"}).content.decode()
    assert 'href="?who=ada&amp;page=2"' in paged


def test_the_time_range_filter_includes_its_start_and_excludes_its_end(admin_client, trail):
    events = trail(3)
    start = events[1].time.replace(tzinfo=None)
    url = reverse("audit:events")
    response = admin_client.get(url, {**PUT, "since": start.isoformat()})
    assert rows(response) == 2
    response = admin_client.get(url, {**PUT, "until": start.isoformat()})
    assert rows(response) == 1
    later = (start + timedelta(days=1)).isoformat()
    assert rows(admin_client.get(url, {"since": later})) == 0


def test_an_unreadable_date_is_shown_on_the_form_and_the_other_filters_still_apply(
    admin_client, trail
):
    trail(2, principal="ada")
    trail(1, principal="otto")  # the admin client signed in as ada
    response = admin_client.get(reverse("audit:events"), {"since": "last week", "who": "otto"})
    assert response.status_code == 200
    assert "Enter a valid date/time." in response.content.decode()
    assert "is-invalid" in response.content.decode()
    assert rows(response) == 1


def test_htmx_gets_only_the_results_partial(admin_client, trail):
    trail(3)
    response = admin_client.get(reverse("audit:events"), PUT, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="audit-results"')
    assert "<html" not in html
    assert rows(response) == 3
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_htmx_restoring_a_page_missing_from_its_history_gets_the_whole_page(admin_client, db):
    response = admin_client.get(
        reverse("audit:events"), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()


def test_outcomes_show_as_badges(admin_client, trail):
    trail(1, outcome="success")
    trail(1, outcome="denied", error_code="AccessDeniedException")
    trail(1, outcome="error", error_code="InternalServerError")
    html = admin_client.get(reverse("audit:events")).content.decode()
    assert '<span class="badge text-bg-success">Success</span>' in html
    assert '<span class="badge text-bg-danger" title="AccessDeniedException">Denied</span>' in html


def test_the_detail_page_shows_every_field_the_parameters_and_the_hashes(admin_client, trail):
    first, second, third = trail(
        3,
        params={"Name": "/app/db-host", "Value": "hunter2", "Overwrite": True},
        source_ip="192.0.2.7",
        user_agent="aws-cli/2.17",
        request_id="5a0c3d",
    )
    response = admin_client.get(reverse("audit:event", args=[second.sequence]))
    html = response.content.decode()
    assert response.status_code == 200
    for text in ("ssm:PutParameter", "192.0.2.7", "aws-cli/2.17", "5a0c3d", second.hash):
        assert text in html
    assert second.prev_hash == first.hash and first.hash in html
    assert "&quot;Value&quot;: &quot;***&quot;" in html and "hunter2" not in html
    assert reverse("audit:event", args=[first.sequence]) in html
    assert reverse("audit:event", args=[third.sequence]) in html


def test_an_unknown_event_is_a_404(admin_client, db):
    assert admin_client.get(reverse("audit:event", args=[999])).status_code == 404


def test_someone_without_audit_access_gets_403_on_both_pages(operator_client, trail):
    trail(1)
    assert operator_client.get(reverse("audit:events")).status_code == 403
    assert operator_client.get(reverse("audit:event", args=[1])).status_code == 403


def test_a_signed_out_visitor_is_sent_to_sign_in(client, db):
    response = client.get(reverse("audit:events"))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_navigation_offers_the_audit_trail_only_to_those_who_may_read_it(
    admin_client, operator_user
):
    assert "Audit trail" in admin_client.get("/").content.decode()
    operator = Client()
    operator.force_login(operator_user)
    assert "Audit trail" not in operator.get("/").content.decode()
