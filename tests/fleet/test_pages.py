"""Fleet Manager pages: who may open them, what each persona sees, forms and live partials."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from fleet.models import Activation, ManagedNode, NodeMessage, ResourceGroup
from fleet.timeline import node_event_record
from tests.factories import ActivationFactory, ManagedNodeFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def activation(db):
    return ActivationFactory(description="Lab")


@pytest.fixture
def group(db):
    return ResourceGroupFactory(name="web-dev")


def page_urls(node, activation, group):
    return [
        reverse("fleet:nodes"),
        reverse("fleet:node", args=[node.pk]),
        reverse("fleet:node-deregister", args=[node.pk]),
        reverse("fleet:activations"),
        reverse("fleet:activation-create"),
        reverse("fleet:activation", args=[activation.pk]),
        reverse("fleet:activation-delete", args=[activation.pk]),
        reverse("fleet:groups"),
        reverse("fleet:group-create"),
        reverse("fleet:group", args=[group.name]),
        reverse("fleet:group-edit", args=[group.name]),
        reverse("fleet:group-delete", args=[group.name]),
    ]


def test_every_fleet_page_renders_for_the_admin(admin_client, dev_node, activation, group):
    for url in page_urls(dev_node, activation, group):
        response = admin_client.get(url)
        assert response.status_code == 200, url


def test_the_outsider_is_refused_every_fleet_page(outsider_client, dev_node, activation, group):
    for url in page_urls(dev_node, activation, group):
        assert outsider_client.get(url).status_code == 403, url
    assert AuditEvent.objects.filter(outcome="denied").exists()


def test_a_signed_out_visitor_is_sent_to_sign_in(client):
    response = client.get(reverse("fleet:nodes"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_operator_lists_only_env_dev_nodes(operator_client, dev_node, prod_node):
    html = operator_client.get(reverse("fleet:nodes")).content.decode()
    assert dev_node.name in html
    assert prod_node.name not in html
    # Nor is it offered pages it may not open.
    assert "Resource groups" not in html and "Hybrid activations" not in html


def test_the_operator_cannot_open_a_prod_node_or_its_row(operator_client, dev_node, prod_node):
    assert operator_client.get(reverse("fleet:node", args=[dev_node.pk])).status_code == 200
    assert operator_client.get(reverse("fleet:node", args=[prod_node.pk])).status_code == 403
    assert operator_client.get(reverse("fleet:node-row", args=[prod_node.pk])).status_code == 403


def test_an_unknown_node_is_a_404_for_the_admin(admin_client):
    assert admin_client.get(reverse("fleet:node", args=["mi-00000000000000000"])).status_code == 404


def test_the_admin_menu_has_every_fleet_page(admin_client):
    admin_html = admin_client.get("/").content.decode()
    assert "Fleet Manager" in admin_html and "Hybrid activations" in admin_html


def test_the_operator_menu_has_fleet_manager_but_not_activations(operator_client):
    html = operator_client.get("/").content.decode()
    assert "Fleet Manager" in html and "Hybrid activations" not in html


def test_the_auditor_menu_has_no_node_management(auditor_client):
    assert "Node management" not in auditor_client.get("/").content.decode()


# --- The list: counts, filters, sort, pages, partials ----------------------------------------


def listed(client, **params):
    response = client.get(reverse("fleet:nodes"), params)
    assert response.status_code == 200
    return response


def test_counts_by_status_head_the_list_and_filter_it(admin_client):
    ManagedNodeFactory.create_batch(3)
    ManagedNodeFactory.create_batch(2, status="ConnectionLost")
    ManagedNodeFactory(status="Deregistered", name="old-node")
    response = listed(admin_client)
    assert response.context["counts"] == {"Online": 3, "ConnectionLost": 2, "Deregistered": 1}
    assert "old-node" not in response.content.decode()  # deregistered only when asked for
    assert 'href="?status=Deregistered"' in response.content.decode()
    assert "old-node" in listed(admin_client, status="Deregistered").content.decode()


def test_search_finds_nodes_by_name_id_and_ip(admin_client):
    web = ManagedNodeFactory(name="web-1", ip_address="192.168.7.20")
    ManagedNodeFactory(name="db-1")
    for query in ("web", web.pk[-6:], "192.168.7"):
        page = listed(admin_client, q=query).context["page"]
        assert [node.pk for node in page] == [web.pk], query


def test_filters_by_platform_tag_and_resource_group(admin_client, dev_node, prod_node):
    ManagedNodeFactory(name="win", platform_type="Windows", platform_name="Windows Server")
    ResourceGroupFactory(name="devs", query={"TagFilters": [{"Key": "Env", "Values": ["dev"]}]})

    def names(**params):
        return {node.name for node in listed(admin_client, **params).context["page"]}

    assert names(platform="windows") == {"win"}
    assert names(tag="Env=prod") == {"prod-web-1"}
    assert names(tag="Role") == {"dev-web-1", "prod-web-1"}
    assert names(group="devs") == {"dev-web-1"}


def test_a_bad_filter_is_shown_inline_and_filters_nothing(admin_client, dev_node):
    response = listed(admin_client, group="no-such-group")
    assert "There is no resource group named no-such-group." in response.content.decode()
    assert [node.pk for node in response.context["page"]] == [dev_node.pk]


def test_sorting_by_each_column(admin_client):
    ManagedNodeFactory(name="b", ip_address="10.0.0.2", last_seen_at=timezone.now())
    ManagedNodeFactory(name="a", ip_address="10.0.0.9", last_seen_at=None)
    assert [n.name for n in listed(admin_client, sort="-name").context["page"]] == ["b", "a"]
    assert [n.name for n in listed(admin_client, sort="ip").context["page"]] == ["b", "a"]
    assert [n.name for n in listed(admin_client, sort="-last_seen").context["page"]] == ["b", "a"]


def test_the_list_pages_by_50_over_the_visible_set(operator_client):
    ManagedNodeFactory.create_batch(60, tags={"Env": "dev"})
    ManagedNodeFactory.create_batch(60, tags={"Env": "prod"})
    first = listed(operator_client).context["page"]
    assert first.paginator.count == 60 and len(first) == 50
    assert len(listed(operator_client, page=2).context["page"]) == 10


def test_htmx_gets_the_results_alone(admin_client, dev_node):
    response = admin_client.get(reverse("fleet:nodes"), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert 'id="node-results"' in html and "<html" not in html


def test_the_row_and_counts_partials_refetched_live(admin_client, dev_node):
    row = admin_client.get(reverse("fleet:node-row", args=[dev_node.pk])).content.decode()
    assert row.strip().startswith(f'<tr id="node-{dev_node.pk}"')
    assert 'hx-trigger="fleet:refresh"' in row
    counts = admin_client.get(reverse("fleet:node-counts"), {"tag": "Env"}).content.decode()
    assert 'id="node-counts"' in counts and "?tag=Env" in counts


def test_a_suspected_clone_is_flagged_in_the_list(admin_client):
    ManagedNodeFactory(clone_suspected_at=timezone.now())
    assert "suspected clone" in listed(admin_client).content.decode()


# --- Bulk tags --------------------------------------------------------------------------------


def test_bulk_tagging_reports_refused_nodes(client, dev_tagger, dev_node, prod_node):
    client.force_login(dev_tagger.user)
    response = client.post(
        reverse("fleet:bulk-tags"),
        {"operation": "add", "tags": "Patch=weekly", "node": [dev_node.pk, prod_node.pk]},
        follow=True,
    )
    html = response.content.decode()
    assert "Tagged 1 node(s)." in html
    assert f"Not allowed on 1 node(s), left untouched: {prod_node.pk}" in html
    assert not prod_node.tags.filter(key="Patch").exists()


def test_bulk_tagging_without_a_selection_says_so(admin_client, dev_node):
    response = admin_client.post(
        reverse("fleet:bulk-tags"), {"operation": "add", "tags": "A=b"}, follow=True
    )
    assert "Select at least one node" in response.content.decode()


def test_bulk_removal_from_the_page(admin_client, dev_node):
    admin_client.post(
        reverse("fleet:bulk-tags"), {"operation": "remove", "tags": "Role", "node": [dev_node.pk]}
    )
    assert not dev_node.tags.filter(key="Role").exists()


# --- Node detail ------------------------------------------------------------------------------


def test_the_detail_page_shows_overview_facts_tags_and_activity(admin_client, dev_node):
    dev_node.facts = {"python_version": "3.11.7"}
    dev_node.save()
    html = admin_client.get(reverse("fleet:node", args=[dev_node.pk])).content.decode()
    for text in ("Overview", "Host facts", "Python version", "Env", "Activity", "Key age"):
        assert text in html
    for button in ("Refresh host facts", "Rotate key", "Deregister"):
        assert button in html


def test_the_operator_sees_no_buttons_it_may_not_use(operator_client, dev_node):
    html = operator_client.get(reverse("fleet:node", args=[dev_node.pk])).content.decode()
    assert "Deregister" not in html and "Add tags" not in html and "Rotate key" not in html


def test_adding_a_tag_inline_and_its_errors(admin_client, dev_node):
    url = reverse("fleet:node-tags-add", args=[dev_node.pk])
    ok = admin_client.post(url, {"tags": "Team=ops"}, headers={"HX-Request": "true"})
    assert ok.status_code == 200 and "Team" in ok.content.decode()
    bad = admin_client.post(url, {"tags": "aws:x=1"}, headers={"HX-Request": "true"})
    assert bad.status_code == 200 and "reserved prefix" in bad.content.decode()
    plain = admin_client.post(url, {"tags": "bad|key=1"})
    assert plain.status_code == 400 and "may hold only" in plain.content.decode()
    assert admin_client.post(url, {"tags": "Env=test"}).status_code == 302


def test_removing_a_tag_inline(admin_client, dev_node):
    url = reverse("fleet:node-tag-remove", args=[dev_node.pk])
    response = admin_client.post(url, {"key": "Role"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert not dev_node.tags.filter(key="Role").exists()


def test_the_timeline_pages(admin_client, dev_node):
    for number in range(25):
        node_event_record(dev_node, kind="status", summary=f"event {number}")
    url = reverse("fleet:node-events", args=[dev_node.pk])
    second = admin_client.get(url, {"events": 2}, headers={"HX-Request": "true"})
    assert "event 4" in second.content.decode() and "event 24" not in second.content.decode()


def test_deregistering_from_the_page_asks_first(admin_client, dev_node):
    url = reverse("fleet:node-deregister", args=[dev_node.pk])
    assert "Deregister node" in admin_client.get(url).content.decode()
    assert ManagedNode.objects.get(pk=dev_node.pk).status == "Online"
    admin_client.post(url)
    assert ManagedNode.objects.get(pk=dev_node.pk).status == "Deregistered"


def test_the_operator_is_not_even_asked_to_deregister(operator_client, dev_node):
    url = reverse("fleet:node-deregister", args=[dev_node.pk])
    assert operator_client.get(url).status_code == 403
    assert operator_client.post(url).status_code == 403


def test_clearing_a_clone_alert_from_the_page(admin_client):
    node = ManagedNodeFactory(clone_suspected_at=timezone.now())
    url = reverse("fleet:node-clear-alert", args=[node.pk])
    assert "Clear alert" in admin_client.get(url).content.decode()
    admin_client.post(url)
    assert ManagedNode.objects.get(pk=node.pk).clone_suspected_at is None


def test_refresh_facts_and_rotate_key_reach_the_agent_services(admin_client, dev_node):
    admin_client.post(reverse("fleet:node-refresh", args=[dev_node.pk]))
    assert NodeMessage.objects.filter(node=dev_node, kind="RefreshHostFacts").exists()
    admin_client.post(reverse("fleet:node-rotate-key", args=[dev_node.pk]))
    assert ManagedNode.objects.get(pk=dev_node.pk).key_rotation_requested_at is not None


# --- Activations ------------------------------------------------------------------------------


def test_the_activation_code_is_shown_once_with_the_install_command(admin_client):
    response = admin_client.post(
        reverse("fleet:activation-create"),
        {"registration_limit": 5, "expires_in_hours": 48, "tags": "Env=dev, Team=ops"},
    )
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    code = response.context["code"]
    activation = Activation.objects.get()
    html = response.content.decode()
    assert code in html
    assert (
        f"sudo bosun-agent register --url http://testserver/ --activation-id {activation.id} "
        f"--activation-code {code} &amp;&amp; sudo systemctl enable --now bosun-agent"
    ) in html
    assert activation.node_tags == [{"Key": "Env", "Value": "dev"}, {"Key": "Team", "Value": "ops"}]
    for url in (reverse("fleet:activation", args=[activation.id]), reverse("fleet:activations")):
        assert code not in admin_client.get(url).content.decode()
    assert not AuditEvent.objects.filter(params_json__contains=code).exists()


def test_the_activation_form_shows_errors_inline(admin_client):
    response = admin_client.post(
        reverse("fleet:activation-create"),
        {"registration_limit": 5000, "expires_in_hours": 24, "tags": "aws:x=1"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "less than or equal to 1000" in html and "reserved prefix" in html
    assert not Activation.objects.exists()


def test_the_activation_list_shows_usage_and_state(admin_client):
    ActivationFactory(registration_limit=3, registrations_count=3)
    ActivationFactory(expires_at=timezone.now() - timezone.timedelta(hours=1))
    html = admin_client.get(reverse("fleet:activations")).content.decode()
    assert "3 / 3" in html and "Used up" in html and "Expired" in html


def test_deleting_an_activation_from_the_page(admin_client, activation):
    admin_client.post(reverse("fleet:activation-delete", args=[activation.pk]))
    assert not Activation.objects.exists()


# --- Resource groups --------------------------------------------------------------------------


def test_creating_a_group_with_errors_inline_then_for_real(admin_client, dev_node):
    url = reverse("fleet:group-create")
    bad = admin_client.post(url, {"name": "has space", "query": "aws:x"})
    assert bad.status_code == 400
    assert "no spaces" in bad.content.decode()
    bad_query = admin_client.post(url, {"name": "ok", "query": "aws:x"})
    assert bad_query.status_code == 400 and "reserved prefix" in bad_query.content.decode()
    admin_client.post(url, {"name": "devs", "query": "Env=dev\nRole"})
    assert ResourceGroup.objects.get(name="devs").query == {
        "TagFilters": [{"Key": "Env", "Values": ["dev"]}, {"Key": "Role", "Values": []}]
    }
    assert dev_node.name in admin_client.get(reverse("fleet:group", args=["devs"])).content.decode()


def test_the_group_preview_lists_matching_visible_nodes(operator_client, dev_node, prod_node):
    url = reverse("fleet:group-preview")
    html = operator_client.get(url, {"query": "Role=web"}).content.decode()
    assert dev_node.name in html and prod_node.name not in html


def test_editing_a_group_keeps_its_name(admin_client, group):
    url = reverse("fleet:group-edit", args=[group.name])
    admin_client.post(url, {"name": "renamed", "description": "d", "query": "Env=prod"})
    group.refresh_from_db()
    assert group.name == "web-dev" and group.query["TagFilters"][0]["Values"] == ["prod"]


# --- The dashboard ------------------------------------------------------------------------------


def test_the_dashboard_counts_nodes_and_raises_clone_alerts(admin_client, dev_node):
    clone = ManagedNodeFactory(name="twin", clone_suspected_at=timezone.now())
    html = admin_client.get("/").content.decode()
    assert 'id="fleet-card"' in html and "?status=ConnectionLost" in html
    assert "Suspected clone" in html and clone.pk in html


def test_the_operator_dashboard_counts_only_what_it_may_see(operator_client, prod_node):
    ManagedNodeFactory(clone_suspected_at=timezone.now(), tags={"Env": "prod"})
    operator_html = operator_client.get("/").content.decode()
    assert 'id="fleet-card"' in operator_html and "Suspected clone" not in operator_html


def test_the_auditor_dashboard_has_no_fleet_card(auditor_client, dev_node):
    assert 'id="fleet-card"' not in auditor_client.get("/").content.decode()


def test_a_refused_posted_action_comes_back_as_a_message(admin_client, dev_node):
    page = reverse("fleet:node", args=[dev_node.pk])
    response = admin_client.post(
        reverse("fleet:node-tag-remove", args=[dev_node.pk]),
        {"key": ""},
        headers={"Referer": f"http://testserver{page}"},
        follow=True,
    )
    assert response.redirect_chain[-1][0].endswith(page)
    assert "must be 1-128 characters" in response.content.decode()
