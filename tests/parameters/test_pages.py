"""Parameter Store pages: the tree and list, the form, a parameter's page, reveal and diff,
labels and tags, deletion, import and export; what each persona may see and do."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from access.authorization import Principal
from access.models import ManagedPolicy
from access.services import builtin_policies_sync
from audit.models import AuditEvent
from parameters import selectors, services
from parameters.models import Parameter, ParameterNotice
from tests.factories import UserFactory, user_with_policy
from tests.parameters.conftest import TEAM_A_READER_POLICY

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-Vault-Value"
HTMX = {"HTTP_HX_REQUEST": "true"}


def put(principal: Principal, name: str, value: str = "v", kind: str = "String", **options):
    return services.parameter_put(
        principal=principal, name=name, value=value, parameter_type=kind, **options
    )


def url(page: str, /, **query) -> str:
    address = reverse(f"parameters:{page}")
    return f"{address}?{urlencode(query)}" if query else address


@pytest.fixture
def secret(admin):
    put(admin, "/app/db/password", SECRET, "SecureString", description="DB password")
    return "/app/db/password"


@pytest.fixture
def readonly_client(client, db):
    """A person with the built-in ReadOnlyAccess: reads everything but secrets."""
    builtin_policies_sync()
    user = UserFactory(username="rita")
    ManagedPolicy.objects.get(name="ReadOnlyAccess").users.add(user)
    client.force_login(user)
    return client


@pytest.fixture
def team_a_client(client, db):
    client.force_login(user_with_policy("tara", TEAM_A_READER_POLICY))
    return client


def body(response) -> str:
    return response.content.decode()


# --- Who may open what ----------------------------------------------------------------------


def page_urls(name: str) -> list[str]:
    return [
        url("list"),
        url("list", path="/app"),
        url("create"),
        url("edit", name=name),
        url("detail", name=name),
        url("diff", name=name),
        url("delete", name=name),
        url("export", path="/app"),
        url("import", path="/app"),
    ]


def test_every_parameter_page_renders_for_the_admin(admin_client, admin):
    put(admin, "/app/url", "https://example.test")
    for address in page_urls("/app/url"):
        assert admin_client.get(address).status_code == 200, address


def test_the_outsider_is_refused_every_parameter_page(outsider_client, admin):
    put(admin, "/app/url", "https://example.test")
    for address in page_urls("/app/url"):
        assert outsider_client.get(address).status_code == 403, address
    assert AuditEvent.objects.filter(outcome="denied", principal="oscar").exists()


def test_a_signed_out_visitor_is_sent_to_sign_in(client):
    response = client.get(url("list"))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_admin_menu_has_parameter_store(admin_client):
    assert "Parameter Store" in body(admin_client.get("/"))


def test_the_operator_menu_has_no_parameter_store(operator_client):
    assert "Parameter Store" not in body(operator_client.get("/"))


def test_an_unknown_parameter_is_a_404(admin_client):
    assert admin_client.get(url("detail", name="/no/such")).status_code == 404


def test_a_page_about_a_parameter_needs_its_name(admin_client):
    assert admin_client.get(url("detail")).status_code == 404


# --- The tree and the list ------------------------------------------------------------------


@pytest.fixture
def hierarchy(admin):
    for name in ("/app/prod/db-url", "/app/prod/api-key", "/app/dev/db-url", "/app/name", "top"):
        put(admin, name)
    put(admin, "/ops/token", "t", "SecureString", tags={"Team": "ops"})


def test_the_top_level_lists_its_folders_and_parameters(admin_client, hierarchy):
    response = admin_client.get(url("list"))
    assert [f.name for f in response.context["folders"]] == ["app", "ops"]
    assert [p.name for p, _ in response.context["rows"]] == ["top"]
    assert [(f.name, f.count) for f in response.context["tree"]] == [("app", 4), ("ops", 1)]


def test_a_path_shows_its_level_and_opens_the_tree_down_to_it(admin_client, hierarchy):
    response = admin_client.get(url("list", path="/app/prod"))
    assert [p.name for p, _ in response.context["rows"]] == [
        "/app/prod/api-key",
        "/app/prod/db-url",
    ]
    assert response.context["folders"] == []
    app = response.context["tree"][0]
    assert app.open and [f.name for f in app.children] == ["dev", "prod"]
    assert app.children[1].current
    html = body(response)
    assert 'aria-current="page">prod</li>' in html  # the breadcrumb
    assert "api-key" in html and "/app/dev/db-url" not in html


def test_a_folder_s_children_load_when_it_is_opened(admin_client, hierarchy):
    html = body(admin_client.get(url("folders", path="/app"), **HTMX))
    assert "?path=/app/dev" in html and "?path=/app/prod" in html


def test_search_finds_names_containing_the_text_anywhere_below_the_path(admin_client, hierarchy):
    response = admin_client.get(url("list", q="db-url"))
    assert response.context["searching"]
    assert [p.name for p, _ in response.context["rows"]] == ["/app/dev/db-url", "/app/prod/db-url"]
    assert response.context["folders"] == []
    below = admin_client.get(url("list", path="/app/dev", q="db"))
    assert [p.name for p, _ in below.context["rows"]] == ["/app/dev/db-url"]


def test_filters_by_type_tier_and_tag(admin_client, hierarchy, admin):
    put(admin, "/app/big", "x" * 5000, tier="Advanced")

    def names(**query):
        return [p.name for p, _ in admin_client.get(url("list", **query)).context["rows"]]

    assert names(type="SecureString") == ["/ops/token"]
    assert names(tier="Advanced") == ["/app/big"]
    assert names(tag="Team") == ["/ops/token"]
    assert names(tag="Team=ops") == ["/ops/token"]
    assert names(tag="Team=dev") == []


def test_an_htmx_search_answers_with_the_results_alone(admin_client, hierarchy):
    response = admin_client.get(url("list", q="name"), **HTMX)
    html = body(response)
    assert html.lstrip().startswith('<div id="parameter-results">')
    assert "/app/name" in html


def test_the_list_pages_by_50_with_next_and_previous(admin_client, admin):
    for number in range(60):
        put(admin, f"/many/p{number:03d}")
    first = admin_client.get(url("list", path="/many"))
    assert len(first.context["rows"]) == 50
    pages = first.context["pages"]
    assert pages["previous"] is None and pages["next"]
    second = admin_client.get(url("list") + pages["next"])
    rows = [p.name for p, _ in second.context["rows"]]
    assert rows[:1] == ["/many/p050"] and len(rows) == 10
    assert second.context["pages"]["next"] is None
    back = admin_client.get(url("list") + second.context["pages"]["previous"])
    assert len(back.context["rows"]) == 50


def test_a_stale_page_token_falls_back_to_the_first_page(admin_client, hierarchy):
    response = admin_client.get(url("list", after="not-a-token"))
    assert response.status_code == 200
    assert "showing the first page" in body(response)


def test_rows_show_type_tier_version_who_and_label_count(admin_client, admin):
    put(admin, "/svc/url", "a")
    put(admin, "/svc/url", "b", overwrite=True)
    services.parameter_label(principal=admin, name="/svc/url", labels=["prod", "blue"])
    response = admin_client.get(url("list", path="/svc"))
    [(parameter, labels)] = response.context["rows"]
    assert (parameter.version, labels) == (2, 2)
    html = body(response)
    assert "by ada" in html and "just now" in html and "Standard" in html


def test_a_reader_of_one_path_sees_only_its_parameters_and_folders(team_a_client, admin):
    for name in ("/team/a/one", "/team/b/secret-name"):
        put(admin, name)
    response = team_a_client.get(url("list", path="/team"))
    assert [f.name for f in response.context["folders"]] == ["a"]
    html = body(team_a_client.get(url("list", q="one")))
    assert "/team/a/one" in html and "secret-name" not in html
    # Describe is allowed everywhere, but creating is not: no button for it.
    assert "Create parameter" not in html


def test_recent_policy_notices_are_listed(admin_client, admin):
    put(admin, "/rotate/me")
    ParameterNotice.objects.create(
        parameter_name="/rotate/me", kind="NoChangeNotification", message="Unchanged for 30 days."
    )
    html = body(admin_client.get(url("list")))
    assert "Unchanged for too long" in html and "Unchanged for 30 days." in html


# --- Create and edit ------------------------------------------------------------------------


def form_data(**values):
    data = {
        "name": "/web/url",
        "description": "",
        "type": "String",
        "tier": "Standard",
        "data_type": "text",
        "value": "https://example.test",
        "key_id": "alias/aws/ssm",
        "allowed_pattern": "",
        "expiration_notice_unit": "Days",
        "no_change_unit": "Days",
        "tags": "",
    }
    return data | values


def test_creating_a_parameter_opens_its_page(admin_client):
    response = admin_client.post(url("create"), form_data(tags="Env=dev, Team=web"))
    assert response.status_code == 302
    assert response["Location"] == url("detail", name="/web/url")
    parameter = Parameter.objects.get(name="/web/url")
    assert parameter.version == 1
    assert dict(parameter.tags.values_list("key", "value")) == {"Env": "dev", "Team": "web"}


def test_the_create_form_starts_in_the_current_path(admin_client):
    response = admin_client.get(url("create", path="/app/prod"))
    assert response.context["form"].initial["name"] == "/app/prod/"


def errors_of(response) -> dict:
    return response.context["form"].errors


def test_a_bad_name_is_shown_beside_the_name(admin_client):
    response = admin_client.post(url("create"), form_data(name="/bad name/x"))
    assert response.status_code == 400
    assert "sub-paths" in errors_of(response)["name"][0]
    assert 'class="invalid-feedback d-block"' in body(response)
    assert not Parameter.objects.exists()


def test_a_standard_value_over_4_kb_is_shown_beside_the_value(admin_client):
    response = admin_client.post(url("create"), form_data(value="x" * 4097))
    assert response.status_code == 400
    assert "maximum parameter value of 4096" in errors_of(response)["value"][0]


def test_a_value_not_matching_the_allowed_pattern_is_shown_beside_the_value(admin_client):
    response = admin_client.post(url("create"), form_data(value="abc", allowed_pattern=r"^\d+$"))
    assert response.status_code == 400
    assert "allowedPattern" in errors_of(response)["value"][0]


def test_policies_need_the_advanced_tier_and_say_so_beside_them(admin_client):
    response = admin_client.post(url("create"), form_data(no_change_after="30"))
    assert response.status_code == 400
    assert "advanced tier" in response.context["policy_error"]
    assert 'id="policy-error"' in body(response)


def test_an_existing_name_is_refused_inline(admin_client, admin):
    put(admin, "/web/url")
    response = admin_client.post(url("create"), form_data())
    assert "already exists" in errors_of(response)["name"][0]


def test_policies_are_built_from_the_simple_fields(admin_client):
    moment = (timezone.now() + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M")
    response = admin_client.post(
        url("create"),
        form_data(
            tier="Advanced",
            expiration=moment,
            expiration_notice="5",
            expiration_notice_unit="Days",
            no_change_after="12",
            no_change_unit="Hours",
        ),
    )
    assert response.status_code == 302
    policies = {p["PolicyType"]: json.loads(p["PolicyText"]) for p in _policies("/web/url")}
    assert policies["ExpirationNotification"]["Attributes"] == {"Before": "5", "Unit": "Days"}
    assert policies["NoChangeNotification"]["Attributes"] == {"After": "12", "Unit": "Hours"}
    assert policies["Expiration"]["Attributes"]["Timestamp"].startswith(moment)
    html = body(admin_client.get(url("detail", name="/web/url")))
    assert "Notice when unchanged for 12 hours" in html and "Pending" in html


def _policies(name: str) -> list[dict]:
    return Parameter.objects.get(name=name).policies


def test_editing_writes_version_2_and_keeps_untouched_policies(admin_client, admin):
    expires = (timezone.now() + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:00.000Z")
    put(
        admin,
        "/web/url",
        "one",
        tier="Advanced",
        policies=json.dumps(
            [
                {"Type": "Expiration", "Attributes": {"Timestamp": expires}},
                {"Type": "ExpirationNotification", "Attributes": {"Before": "5", "Unit": "Days"}},
            ]
        ),
    )
    expiration, notice = _policies("/web/url")
    Parameter.objects.filter(name="/web/url").update(
        policies=[expiration, {**notice, "PolicyStatus": "Finished"}]
    )
    form = admin_client.get(url("edit", name="/web/url")).context["form"]
    assert form.initial["value"] == "one" and form.initial["expiration_notice"] == 5
    unchanged = {
        "expiration": form.initial["expiration"].strftime("%Y-%m-%dT%H:%M"),
        "expiration_notice": "5",
    }
    response = admin_client.post(
        url("edit", name="/web/url"),
        form_data(value="two", tier="Advanced", description="second", **unchanged),
    )
    assert response.status_code == 302
    parameter = Parameter.objects.get(name="/web/url")
    assert (parameter.version, parameter.description) == (2, "second")
    # Not sent again, so the notice already given is not given twice.
    assert parameter.policies[1]["PolicyStatus"] == "Finished"
    assert selectors.parameter_get(principal=admin, name="/web/url").value == "two"


def test_clearing_the_policy_fields_removes_the_policies(admin_client, admin):
    put(
        admin,
        "/web/url",
        "one",
        tier="Advanced",
        policies=json.dumps(
            [{"Type": "NoChangeNotification", "Attributes": {"After": "3", "Unit": "Days"}}]
        ),
    )
    response = admin_client.post(url("edit", name="/web/url"), form_data(tier="Advanced"))
    assert response.status_code == 302
    assert _policies("/web/url") == []


def test_the_edit_form_never_holds_a_secure_string_and_requires_a_new_one(admin_client, secret):
    response = admin_client.get(url("edit", name=secret))
    html = body(response)
    assert SECRET not in html
    assert "type the new value in full" in html
    refused = admin_client.post(url("edit", name=secret), form_data(type="SecureString", value=""))
    assert refused.status_code == 400
    assert "must not be empty" in errors_of(refused)["value"][0]
    assert Parameter.objects.get(name=secret).version == 1


def test_a_refused_secure_string_is_not_sent_back_to_the_browser(admin_client):
    response = admin_client.post(
        url("create"),
        form_data(type="SecureString", value=SECRET, allowed_pattern=r"^\d+$"),
    )
    assert response.status_code == 400
    html = body(response)
    assert SECRET not in html and "type it again" in html
    assert "no-store" in response["Cache-Control"]


def test_editing_a_secure_string_writes_version_2(admin_client, admin, secret):
    response = admin_client.post(
        url("edit", name=secret), form_data(type="SecureString", value="n3w-secret")
    )
    assert response.status_code == 302
    value = selectors.parameter_get(principal=admin, name=secret, with_decryption=True)
    assert (value.version, value.value) == (2, "n3w-secret")


def test_a_reader_may_not_open_the_edit_form(readonly_client, admin):
    put(admin, "/web/url")
    assert readonly_client.get(url("edit", name="/web/url")).status_code == 403
    assert readonly_client.get(url("create")).status_code == 403


# --- A parameter's page, reveal ------------------------------------------------------------


def test_a_string_value_is_shown_on_its_page(admin_client, admin):
    put(admin, "/web/url", "https://example.test", description="Where the site lives")
    html = body(admin_client.get(url("detail", name="/web/url")))
    assert "https://example.test" in html and "Where the site lives" in html
    assert "arn:aws:ssm:" in html and "parameter/web/url" in html


def test_a_secure_string_is_masked_on_its_page(admin_client, secret):
    html = body(admin_client.get(url("detail", name=secret)))
    assert "••••••" in html and "Reveal" in html
    assert SECRET not in html


def test_reveal_returns_the_plaintext_uncached_and_audited(admin_client, secret):
    response = admin_client.post(url("reveal"), {"name": secret}, **HTMX)
    assert response.status_code == 200
    assert SECRET in body(response)
    assert "no-store" in response["Cache-Control"]
    event = AuditEvent.objects.filter(action="kms:Decrypt", principal="ada").get()
    assert any(resource.endswith("parameter/app/db/password") for resource in event.resources)
    assert SECRET not in event.params_json


def test_reveal_without_javascript_is_a_page_of_its_own(admin_client, secret):
    response = admin_client.post(url("reveal"), {"name": secret})
    assert response.status_code == 200 and SECRET in body(response)
    assert "no-store" in response["Cache-Control"]


def test_reveal_is_a_post(admin_client, secret):
    assert admin_client.get(url("reveal", name=secret)).status_code == 405


def test_a_read_only_user_is_refused_the_reveal_and_gets_no_plaintext(readonly_client, secret):
    page = readonly_client.get(url("detail", name=secret))
    assert page.status_code == 200 and SECRET not in body(page)
    for headers in ({}, HTMX):
        response = readonly_client.post(url("reveal"), {"name": secret}, **headers)
        assert response.status_code == 403
        assert SECRET not in body(response)
    refused = readonly_client.post(url("reveal"), {"name": secret}, **HTMX)
    assert "not allowed to decrypt" in body(refused)
    assert AuditEvent.objects.filter(action="kms:Decrypt", outcome="denied").exists()
    assert not AuditEvent.objects.filter(action="kms:Decrypt", outcome="success").exists()


def test_hiding_a_revealed_value_masks_it_again(admin_client, secret):
    html = body(admin_client.get(url("value", name=secret), **HTMX))
    assert "••••••" in html and SECRET not in html


def test_a_secure_string_never_appears_on_any_page_unless_revealed(admin_client, admin, secret):
    put(admin, secret, "second-" + SECRET, "SecureString", overwrite=True)
    services.parameter_label(principal=admin, name=secret, labels=["prod"], version=1)
    for address in [
        url("list"),
        url("list", path="/app/db"),
        url("list", q="password"),
        url("detail", name=secret),
        url("history", name=secret),
        url("edit", name=secret),
        url("diff", name=secret, a=1, b=2),
        url("delete", name=secret),
        url("export", path="/app"),
    ]:
        html = body(admin_client.get(address))
        assert SECRET not in html, address


def test_history_shows_every_version_newest_first_paged(admin_client, admin):
    for number in range(25):
        put(admin, "/h/p", f"v{number}", overwrite=number > 0, description=f"d{number}")
    page = admin_client.get(url("detail", name="/h/p")).context["history"]
    assert [entry.row.version for entry in page][:2] == [25, 24] and len(page) == 20
    older = body(admin_client.get(url("history", name="/h/p", history=2), **HTMX))
    assert older.lstrip().startswith('<div class="card mb-3" id="parameter-history"')
    assert "Page 2 of 2" in older and ">d4</td>" in older and ">d5</td>" not in older


# --- Diff -----------------------------------------------------------------------------------


def test_a_diff_of_two_string_versions_marks_what_changed(admin_client, admin):
    put(admin, "/cfg/app", "host=a\nport=80\nmode=<b>")
    put(admin, "/cfg/app", "host=b\nport=80\nmode=<b>", overwrite=True, description="moved")
    response = admin_client.get(url("diff", name="/cfg/app", a=1, b=2))
    kinds = [(line.kind, line.text) for line in response.context["lines"]]
    assert ("removed", "-host=a") in kinds and ("added", "+host=b") in kinds
    html = body(response)
    assert "mode=&lt;b&gt;" in html and "mode=<b>" not in html  # escaped
    settings = {row[0]: row for row in response.context["settings"]}
    assert settings["Description"][3] and not settings["Type"][3]


def test_a_diff_defaults_to_the_two_newest_versions(admin_client, admin):
    for number in range(3):
        put(admin, "/cfg/app", f"v{number}", overwrite=number > 0)
    response = admin_client.get(url("diff", name="/cfg/app"))
    assert (response.context["a"], response.context["b"]) == (2, 3)


def test_a_diff_of_a_missing_version_says_so(admin_client, admin):
    put(admin, "/cfg/app", "v")
    response = admin_client.get(url("diff", name="/cfg/app", a=1, b=7))
    assert response.status_code == 404 and "is not kept" in body(response)


def test_a_secure_string_diff_needs_an_explicit_audited_decryption(admin_client, admin, secret):
    put(admin, secret, "next-" + SECRET, "SecureString", overwrite=True)
    shown = admin_client.get(url("diff", name=secret, a=1, b=2))
    assert shown.context["lines"] is None and "Decrypt and compare" in body(shown)
    assert not AuditEvent.objects.filter(action="kms:Decrypt").exists()
    response = admin_client.post(url("diff"), {"name": secret, "a": 1, "b": 2}, **HTMX)
    assert response.status_code == 200
    html = body(response)
    assert f"-{SECRET}" in html and f"+next-{SECRET}" in html
    assert "no-store" in response["Cache-Control"]
    assert AuditEvent.objects.filter(action="kms:Decrypt", outcome="success").count() == 2


def test_a_secure_string_diff_is_refused_to_whom_may_not_decrypt(readonly_client, admin, secret):
    put(admin, secret, "next-" + SECRET, "SecureString", overwrite=True)
    response = readonly_client.post(url("diff"), {"name": secret, "a": 1, "b": 2}, **HTMX)
    assert response.status_code == 403
    html = body(response)
    assert "not allowed to decrypt" in html and SECRET not in html


# --- Labels and tags ------------------------------------------------------------------------


@pytest.fixture
def two_versions(admin):
    put(admin, "/lab/p", "one")
    put(admin, "/lab/p", "two", overwrite=True)
    return "/lab/p"


def labels_of(name: str) -> dict[int, list[str]]:
    return selectors.parameter_labels(Parameter.objects.get(name=name))


def test_a_label_is_attached_to_a_chosen_version_and_moved(admin_client, two_versions):
    response = admin_client.post(
        url("label-attach"), {"name": two_versions, "label": "prod", "version": 1}, **HTMX
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == "parameter-labels-changed"
    assert "→ version 1" in body(response)
    assert labels_of(two_versions) == {1: ["prod"]}
    admin_client.post(url("label-attach"), {"name": two_versions, "label": "prod", "version": 2})
    assert labels_of(two_versions) == {2: ["prod"]}


def test_an_invalid_label_is_shown_beside_the_label(admin_client, two_versions):
    response = admin_client.post(
        url("label-attach"), {"name": two_versions, "label": "1st", "version": 1}, **HTMX
    )
    assert "can&#x27;t begin with a number" in body(response)
    assert labels_of(two_versions) == {}


def test_a_label_is_removed(admin_client, admin, two_versions):
    services.parameter_label(principal=admin, name=two_versions, labels=["prod"], version=1)
    response = admin_client.post(
        url("label-remove"), {"name": two_versions, "label": "prod", "version": 1}
    )
    assert response.status_code == 302
    assert labels_of(two_versions) == {}


def test_tags_are_added_and_removed_inline(admin_client, admin):
    put(admin, "/tag/p")
    response = admin_client.post(url("tags-add"), {"name": "/tag/p", "tags": "Env=dev"}, **HTMX)
    assert "Env" in body(response) and 'id="parameter-tags"' in body(response)
    admin_client.post(url("tag-remove"), {"name": "/tag/p", "key": "Env"}, **HTMX)
    assert not Parameter.objects.get(name="/tag/p").tags.exists()


def test_a_bad_tag_is_shown_inline(admin_client, admin):
    put(admin, "/tag/p")
    response = admin_client.post(
        url("tags-add"), {"name": "/tag/p", "tags": "aws:reserved=x"}, **HTMX
    )
    assert response.status_code == 200 and "invalid-feedback" in body(response)
    assert not Parameter.objects.get(name="/tag/p").tags.exists()


def test_a_reader_sees_no_buttons_to_change_a_parameter(readonly_client, admin, two_versions):
    html = body(readonly_client.get(url("detail", name=two_versions)))
    for button in ("Edit (new version)", "Delete", "Attach", "Add tags"):
        assert button not in html
    assert (
        readonly_client.post(
            url("label-attach"), {"name": two_versions, "label": "x", "version": 1}
        ).status_code
        == 403
    )


# --- Delete ---------------------------------------------------------------------------------


def test_deleting_asks_first_then_returns_to_the_folder(admin_client, admin):
    put(admin, "/del/me")
    confirm = admin_client.get(url("delete", name="/del/me"))
    assert "Delete parameter /del/me?" in body(confirm)
    assert Parameter.objects.filter(name="/del/me").exists()
    response = admin_client.post(url("delete", name="/del/me"), {"name": "/del/me"})
    assert response.status_code == 302 and response["Location"] == url("list", path="/del")
    assert not Parameter.objects.filter(name="/del/me").exists()


def test_a_reader_may_not_delete(readonly_client, admin):
    put(admin, "/del/me")
    assert readonly_client.get(url("delete", name="/del/me")).status_code == 403
    assert readonly_client.post(url("delete"), {"name": "/del/me"}).status_code == 403
    assert Parameter.objects.filter(name="/del/me").exists()


# --- Export and import ----------------------------------------------------------------------


@pytest.fixture
def exportable(admin, secret):
    put(admin, "/app/db/host", "db.internal")
    put(admin, "/app/name", 'say "hi"')


def test_export_as_json_leaves_secure_strings_out_by_default(admin_client, exportable):
    response = admin_client.post(url("export"), {"path": "/app", "fmt": "json"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="app.json"'
    assert json.loads(response.content) == {"db/host": "db.internal", "name": 'say "hi"'}
    assert response["X-Bosun-Skipped"] == "1"
    assert "no-store" in response["Cache-Control"]


def test_the_export_page_lists_the_secure_strings_a_plain_export_leaves_out(
    admin_client, exportable
):
    html = body(admin_client.get(url("export", path="/app")))
    assert "/app/db/password" in html and SECRET not in html


def test_export_as_env_with_secure_values_decrypts_them_audited(admin_client, exportable):
    response = admin_client.post(
        url("export"), {"path": "/app", "fmt": "env", "with_decryption": "on"}
    )
    text = response.content.decode()
    assert response["Content-Disposition"] == 'attachment; filename="app.env"'
    assert f'DB_PASSWORD="{SECRET}"' in text and 'NAME="say \\"hi\\""' in text
    assert AuditEvent.objects.filter(action="kms:Decrypt", outcome="success").count() == 1


def test_secure_strings_one_may_not_decrypt_are_listed_before_the_download(
    readonly_client, exportable
):
    asked = {"path": "/app", "fmt": "json", "with_decryption": "on"}
    response = readonly_client.post(url("export"), asked)
    assert response["Content-Type"].startswith("text/html")
    html = body(response)
    assert "you may not decrypt would be left out" in html and "/app/db/password" in html
    assert SECRET not in html
    download = readonly_client.post(url("export"), asked | {"skipped_ok": "on"})
    assert json.loads(download.content) == {"db/host": "db.internal", "name": 'say "hi"'}


def test_import_json_pasted_reports_each_entry(admin_client, admin):
    put(admin, "/imp/exists", "old")
    content = json.dumps({"db/url": "postgres://x", "exists": "new", "bad name": "v"})
    response = admin_client.post(
        url("import"), {"path": "/imp", "fmt": "auto", "content": content, "type": "String"}
    )
    assert response.status_code == 200
    outcomes = {line.name: line.outcome for line in response.context["result"].lines}
    assert outcomes == {
        "/imp/db/url": "created",
        "/imp/exists": "failed",
        "/imp/bad name": "failed",
    }
    assert "already exists" in body(response)
    assert "no-store" in response["Cache-Control"]


def test_import_env_upload_as_secure_strings_with_overwrite(admin_client, admin):
    put(admin, "/imp/TOKEN", "old", "SecureString")
    upload = SimpleUploadedFile("secrets.env", f'TOKEN="{SECRET}"\nexport OTHER=x\n'.encode())
    response = admin_client.post(
        url("import"),
        {"path": "/imp", "fmt": "auto", "file": upload, "type": "SecureString", "overwrite": "on"},
    )
    outcomes = {
        line.name: (line.outcome, line.version) for line in response.context["result"].lines
    }
    assert outcomes == {"/imp/TOKEN": ("updated", 2), "/imp/OTHER": ("created", 1)}
    assert SECRET not in body(response)
    value = selectors.parameter_get(principal=admin, name="/imp/TOKEN", with_decryption=True)
    assert value.value == SECRET


def test_an_import_of_bad_json_is_refused_inline(admin_client):
    response = admin_client.post(
        url("import"), {"path": "/imp", "fmt": "json", "content": "{nope", "type": "String"}
    )
    assert response.status_code == 400
    assert "not valid JSON" in errors_of(response)["content"][0]
    assert not Parameter.objects.exists()


def test_import_needs_a_file_or_pasted_text(admin_client):
    response = admin_client.post(url("import"), {"path": "/imp", "fmt": "auto", "type": "String"})
    assert "Upload a file or paste" in errors_of(response)["content"][0]


# --- What a reader of one path sees elsewhere ------------------------------------------------


DESCRIBE_ALL_READ_TEAM_A = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "ssm:DescribeParameters", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": ["ssm:GetParameter*", "kms:Decrypt"],
            "Resource": ["arn:aws:ssm:*:*:parameter/team/a/*", "arn:aws:kms:*:*:key/*"],
        },
    ],
}


def test_a_reader_of_one_path_sees_only_metadata_of_other_parameters(client, admin):
    put(admin, "/team/b/x", "b-value-hidden")
    client.force_login(user_with_policy("tess", DESCRIBE_ALL_READ_TEAM_A))
    team_a_client = client
    page = team_a_client.get(url("detail", name="/team/b/x"))
    assert page.status_code == 200
    html = body(page)
    assert "b-value-hidden" not in html
    assert "You may not read this parameter's value." in html
    assert "You may not read this parameter's history." in html
    assert team_a_client.get(url("diff", name="/team/b/x")).status_code == 403
    assert team_a_client.post(url("reveal"), {"name": "/team/b/x"}).status_code == 403


def test_labelling_a_version_that_is_not_kept_is_shown_beside_the_version(
    admin_client, two_versions
):
    response = admin_client.post(
        url("label-attach"), {"name": two_versions, "label": "prod", "version": 9}, **HTMX
    )
    assert "could not find version 9" in body(response)
    assert labels_of(two_versions) == {}
