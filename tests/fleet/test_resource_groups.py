"""Resource groups: saved tag queries, their rules, and what they match."""

from __future__ import annotations

import pytest

from access.authorization import Principal
from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied
from fleet.exceptions import FleetValidationError, ResourceGroupNotFound
from fleet.models import ResourceGroup
from fleet.selectors import tag_query_nodes
from fleet.services import resource_group_create, resource_group_delete, resource_group_update
from tests.factories import ManagedNodeFactory, user_with_policy

pytestmark = pytest.mark.django_db

DEV_WEB = {"TagFilters": [{"Key": "Env", "Values": ["dev"]}, {"Key": "Role", "Values": ["web"]}]}


def matched(principal, query):
    return set(tag_query_nodes(principal, query).values_list("name", flat=True))


def test_filters_and_together_values_or_together_and_no_values_means_has_the_key(admin):
    ManagedNodeFactory(name="a", tags={"Env": "dev", "Role": "web"})
    ManagedNodeFactory(name="b", tags={"Env": "test", "Role": "db"})
    ManagedNodeFactory(name="c", tags={"Env": "prod"})
    ManagedNodeFactory(name="gone", status="Deregistered", tags={"Env": "dev", "Role": "web"})
    assert matched(admin, DEV_WEB) == {"a"}
    either = {"TagFilters": [{"Key": "Env", "Values": ["dev", "test"]}]}
    assert matched(admin, either) == {"a", "b"}
    has_role = {"TagFilters": [{"Key": "Role", "Values": []}]}
    assert matched(admin, has_role) == {"a", "b"}


def test_a_group_shows_each_person_only_the_nodes_they_may_see(operator):
    ManagedNodeFactory(name="dev-1", tags={"Env": "dev", "Role": "web"})
    ManagedNodeFactory(name="prod-1", tags={"Env": "prod", "Role": "web"})
    assert matched(operator, {"TagFilters": [{"Key": "Role", "Values": ["web"]}]}) == {"dev-1"}


def test_creating_updating_and_deleting_a_group_is_audited(admin):
    group = resource_group_create(principal=admin, name="web-dev", query=DEV_WEB)
    assert group.query == DEV_WEB
    resource_group_update(
        principal=admin,
        name="web-dev",
        query={"TagFilters": [{"Key": "Env", "Values": ["dev"]}]},
        description="dev",
    )
    assert ResourceGroup.objects.get(name="web-dev").description == "dev"
    resource_group_delete(principal=admin, name="web-dev")
    assert not ResourceGroup.objects.exists()
    actions = list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True))
    assert actions == [
        "resource-groups:CreateGroup",
        "resource-groups:UpdateGroup",
        "resource-groups:DeleteGroup",
    ]


@pytest.mark.parametrize(
    ("name", "query", "message"),
    [
        ("has space", DEV_WEB, "letters, digits and _ . -"),
        ("x" * 129, DEV_WEB, "letters, digits and _ . -"),
        ("ok", {}, "at least one tag filter"),
        ("ok", {"TagFilters": [{"Key": "Env"}], "Other": 1}, "Unknown query field"),
        ("ok", {"TagFilters": [{"Key": "aws:x", "Values": []}]}, "Tag filter 1: "),
        ("ok", {"TagFilters": [{"Key": "Env", "Values": "dev"}]}, "Values is a list"),
        ("ok", {"TagFilters": [{"Key": "Env"}, {"Key": "Env"}]}, "filtered twice"),
        ("ok", {"TagFilters": [{"Key": "Env", "Values": ["v"] * 21}]}, "at most 20"),
        ("ok", {"TagFilters": [{"Key": f"k{i}"} for i in range(51)]}, "at most 50"),
    ],
)
def test_invalid_groups_are_refused_with_a_clear_message(admin, name, query, message):
    with pytest.raises(FleetValidationError) as refused:
        resource_group_create(principal=admin, name=name, query=query)
    assert message in refused.value.message
    assert not ResourceGroup.objects.exists()


def test_group_names_are_unique(admin):
    resource_group_create(principal=admin, name="web", query=DEV_WEB)
    with pytest.raises(FleetValidationError, match="already exists"):
        resource_group_create(principal=admin, name="web", query=DEV_WEB)


def test_updating_an_unknown_group_says_so(admin):
    with pytest.raises(ResourceGroupNotFound):
        resource_group_update(principal=admin, name="nope", query=DEV_WEB)


def test_group_actions_follow_policy_on_the_group_arn(operator):
    with pytest.raises(AccessDenied):
        resource_group_create(principal=operator, name="web", query=DEV_WEB)
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "resource-groups:*",
                "Resource": "arn:aws:resource-groups:*:*:group/team-*",
            }
        ],
    }
    team = Principal(user=user_with_policy("tim", document))
    resource_group_create(principal=team, name="team-web", query=DEV_WEB)
    with pytest.raises(AccessDenied):
        resource_group_create(principal=team, name="web", query=DEV_WEB)
