"""Who may read and write which parameters: path-scoped readers, outsiders, ReadOnlyAccess
(which reads ciphertext but may not decrypt), and policies conditioned on parameter tags."""

from __future__ import annotations

import pytest

from access.authorization import Principal
from audit.models import AuditEvent
from parameters import selectors, services
from tests.factories import user_with_policy
from tests.parameters.conftest import refused

pytestmark = pytest.mark.django_db

ARN = "arn:aws:ssm:us-east-1:000000000000:parameter"

# Reads and overwrites parameters tagged Env=dev (and decrypts them: kms:Decrypt is decided on
# the key, whose tags are not the parameter's), and nothing else.
DEV_ONLY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["ssm:GetParameter*", "ssm:DescribeParameters", "ssm:PutParameter"],
            "Resource": "*",
            "Condition": {"StringEquals": {"ssm:resourceTag/Env": "dev"}},
        },
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
    ],
}


@pytest.fixture
def teams(put):
    put("/team/a/one", "a1")
    put("/team/a/secret", "a-secret", "SecureString")
    put("/team/b/one", "b1")
    put("/team/b/secret", "b-secret", "SecureString")


@pytest.fixture
def dev_only(db) -> Principal:
    return Principal(user=user_with_policy("devon", DEV_ONLY_POLICY))


def denials(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, outcome="denied"))


# --- Path-scoped reader ---------------------------------------------------------------------


def test_a_path_read_returns_only_the_parameters_the_caller_may_read(teams, team_a_reader):
    page = selectors.parameters_by_path(
        principal=team_a_reader, path="/team", recursive=True, with_decryption=True
    )
    assert [(p.name, p.value) for p in page.items] == [
        ("/team/a/one", "a1"),
        ("/team/a/secret", "a-secret"),
    ]


def test_a_path_read_pages_through_hidden_parameters_without_losing_any(put, team_a_reader):
    for number in range(30):
        put(f"/team/b/hidden{number:02d}", "h")
        if number % 3 == 0:
            put(f"/team/a/shown{number:02d}", "s")
    seen, token = [], None
    while True:
        page = selectors.parameters_by_path(
            principal=team_a_reader, path="/team", recursive=True, max_results=2, next_token=token
        )
        seen += [p.name for p in page.items]
        token = page.next_token
        if token is None:
            break
    assert seen == [f"/team/a/shown{n:02d}" for n in range(0, 30, 3)]


def test_a_reader_may_not_read_outside_its_path(teams, team_a_reader):
    message = refused(
        "AccessDeniedException",
        lambda: selectors.parameter_get(principal=team_a_reader, name="/team/b/one"),
    )
    assert message == (
        f"User tara is not authorized to perform ssm:GetParameter on resource {ARN}/team/b/one"
    )
    refused(
        "AccessDeniedException",
        lambda: selectors.parameter_history(principal=team_a_reader, name="/team/b/one"),
    )
    refused(
        "AccessDeniedException",
        lambda: selectors.parameters_get(
            principal=team_a_reader, names=["/team/a/one", "/team/b/one"]
        ),
    )


def test_describe_lists_only_what_the_caller_may_describe(teams, team_a_reader):
    page = selectors.parameters_describe(principal=team_a_reader)
    assert [item.parameter.name for item in page.items] == ["/team/a/one", "/team/a/secret"]


def test_a_reader_learns_nothing_about_a_parameter_it_may_not_read(teams, team_a_reader):
    for name in ("/team/b/one:7", "/team/b/one:nolabel", "/team/b/none", "/team/b/none:3"):
        refused(
            "AccessDeniedException",
            lambda n=name: selectors.parameter_get(principal=team_a_reader, name=n),
        )


# --- Outsider -------------------------------------------------------------------------------


def test_an_outsider_is_denied_every_read_and_each_denial_is_audited(teams, outsider):
    calls = {
        "ssm:GetParameter": lambda: selectors.parameter_get(principal=outsider, name="/team/a/one"),
        "ssm:GetParametersByPath": lambda: selectors.parameters_by_path(
            principal=outsider, path="/team", recursive=True
        ),
        "ssm:DescribeParameters": lambda: selectors.parameters_describe(principal=outsider),
        "ssm:GetParameterHistory": lambda: selectors.parameter_history(
            principal=outsider, name="/team/a/one"
        ),
        "ssm:ListTagsForResource": lambda: selectors.parameter_tags(
            principal=outsider, name="/team/a/one"
        ),
    }
    for action, call in calls.items():
        message = refused("AccessDeniedException", call)
        assert message.startswith(f"User oscar is not authorized to perform {action} on resource")
        [denial] = denials(action)
        assert (denial.principal, denial.error_code) == ("oscar", "AccessDeniedException")
    [by_path] = denials("ssm:GetParametersByPath")
    assert by_path.resources == [f"{ARN}/team"]


def test_an_outsider_is_denied_writes_before_learning_whether_the_parameter_exists(teams, outsider):
    for name in ("/team/a/one", "/team/a/none"):
        refused(
            "AccessDeniedException",
            lambda n=name: services.parameter_delete(principal=outsider, name=n),
        )
        refused(
            "AccessDeniedException",
            lambda n=name: services.parameter_label(principal=outsider, name=n, labels=["x"]),
        )
    assert len(denials("ssm:DeleteParameter")) == 2


# --- ReadOnlyAccess -------------------------------------------------------------------------


def test_read_only_access_reads_values_and_ciphertext_but_may_not_decrypt(teams, read_only):
    assert selectors.parameter_get(principal=read_only, name="/team/b/one").value == "b1"
    sealed = selectors.parameter_get(principal=read_only, name="/team/b/secret")
    assert sealed.value != "b-secret" and not sealed.decrypted
    message = refused(
        "AccessDeniedException",
        lambda: selectors.parameter_get(
            principal=read_only, name="/team/b/secret", with_decryption=True
        ),
    )
    assert message.startswith("User rory is not authorized to perform kms:Decrypt on resource ")
    [denial] = denials("kms:Decrypt")
    assert denial.principal == "rory"
    assert not AuditEvent.objects.filter(action="kms:Decrypt", outcome="success").exists()


def test_read_only_access_may_not_decrypt_through_a_path_read_or_history(teams, read_only):
    refused(
        "AccessDeniedException",
        lambda: selectors.parameters_by_path(
            principal=read_only, path="/team", recursive=True, with_decryption=True
        ),
    )
    refused(
        "AccessDeniedException",
        lambda: selectors.parameter_history(
            principal=read_only, name="/team/a/secret", with_decryption=True
        ),
    )
    page = selectors.parameters_by_path(principal=read_only, path="/team", recursive=True)
    assert len(page.items) == 4


def test_read_only_access_may_not_write(read_only, put):
    refused("AccessDeniedException", lambda: put("/ro/x", "v", principal=read_only))


# --- Tag conditions -------------------------------------------------------------------------


@pytest.fixture
def tagged(put):
    put("/svc/dev/url", "dev-url", tags={"Env": "dev"})
    put("/svc/dev/secret", "dev-secret", "SecureString", tags={"Env": "dev"})
    put("/svc/prod/url", "prod-url", tags={"Env": "prod"})
    put("/svc/untagged", "plain")


def test_a_tag_conditioned_policy_reads_only_parameters_carrying_the_tag(tagged, dev_only):
    assert selectors.parameter_get(principal=dev_only, name="/svc/dev/url").value == "dev-url"
    opened = selectors.parameter_get(
        principal=dev_only, name="/svc/dev/secret", with_decryption=True
    )
    assert opened.value == "dev-secret"
    for name in ("/svc/prod/url", "/svc/untagged"):
        refused(
            "AccessDeniedException",
            lambda n=name: selectors.parameter_get(principal=dev_only, name=n),
        )


def test_a_tag_conditioned_policy_filters_path_reads_and_describe(tagged, dev_only):
    page = selectors.parameters_by_path(principal=dev_only, path="/svc", recursive=True)
    assert [p.name for p in page.items] == ["/svc/dev/secret", "/svc/dev/url"]
    described = selectors.parameters_describe(principal=dev_only)
    assert [m.parameter.name for m in described.items] == ["/svc/dev/secret", "/svc/dev/url"]


def test_a_tag_conditioned_policy_overwrites_only_parameters_carrying_the_tag(
    tagged, dev_only, put, admin
):
    assert put("/svc/dev/url", "new", None, overwrite=True, principal=dev_only).version == 2
    refused(
        "AccessDeniedException",
        lambda: put("/svc/prod/url", "hijacked", None, overwrite=True, principal=dev_only),
    )
    assert selectors.parameter_get(principal=admin, name="/svc/prod/url").value == "prod-url"
    [denial] = denials("ssm:PutParameter")
    assert (denial.principal, denial.resources) == ("devon", [f"{ARN}/svc/prod/url"])


def test_retagging_a_parameter_changes_who_may_read_it(tagged, dev_only, admin):
    services.parameter_tags_add(principal=admin, name="/svc/prod/url", tags={"Env": "dev"})
    assert selectors.parameter_get(principal=dev_only, name="/svc/prod/url").value == "prod-url"
    services.parameter_tags_remove(principal=admin, name="/svc/prod/url", keys=["Env"])
    refused(
        "AccessDeniedException",
        lambda: selectors.parameter_get(principal=dev_only, name="/svc/prod/url"),
    )
