"""Target resolution: every key kind, AWS's limits, and what policy refuses."""

from __future__ import annotations

import pytest

from bosun.lib.errors import AccessDenied
from fleet.exceptions import InvalidTarget, ResourceGroupNotFound
from fleet.targets import targets_resolve
from tests.factories import ManagedNodeFactory, ResourceGroupFactory

pytestmark = pytest.mark.django_db

SEND = "ssm:SendCommand"
UNKNOWN_ID = "mi-00000000000000000"


@pytest.fixture
def fleet(db):
    return {
        "web-dev": ManagedNodeFactory(name="web-dev", tags={"Env": "dev", "Role": "web"}),
        "db-dev": ManagedNodeFactory(
            name="db-dev", status="ConnectionLost", tags={"Env": "dev", "Role": "db"}
        ),
        "web-prod": ManagedNodeFactory(name="web-prod", tags={"Env": "prod", "Role": "web"}),
        "bare": ManagedNodeFactory(name="bare"),
        "gone": ManagedNodeFactory(name="gone", status="Deregistered", tags={"Env": "dev"}),
    }


def names(resolution, fleet):
    by_id = {node.pk: name for name, node in fleet.items()}
    return {by_id[node_id] for node_id in resolution.node_ids}


def test_instance_ids_reach_those_nodes_and_explain_the_rest(admin, fleet):
    ids = [fleet["web-dev"].pk, fleet["gone"].pk, UNKNOWN_ID]
    resolution = targets_resolve(
        principal=admin, targets=[{"Key": "InstanceIds", "Values": ids}], action=SEND
    )
    assert names(resolution, fleet) == {"web-dev"}
    assert resolution.deregistered_ids == [fleet["gone"].pk]
    assert resolution.unknown_ids == [UNKNOWN_ID]
    assert resolution.refused_ids == []


def test_a_tag_target_matches_any_of_its_values(admin, fleet):
    resolution = targets_resolve(
        principal=admin, targets=[{"Key": "tag:Env", "Values": ["dev", "prod"]}], action=SEND
    )
    assert names(resolution, fleet) == {"web-dev", "db-dev", "web-prod"}
    assert (resolution.online, resolution.offline) == (2, 1)


def test_tag_key_matches_nodes_holding_the_key(admin, fleet):
    resolution = targets_resolve(
        principal=admin, targets=[{"Key": "tag-key", "Values": ["Role"]}], action=SEND
    )
    assert names(resolution, fleet) == {"web-dev", "db-dev", "web-prod"}


def test_a_resource_group_target_uses_the_group_query(admin, fleet):
    ResourceGroupFactory(name="web", query={"TagFilters": [{"Key": "Role", "Values": ["web"]}]})
    resolution = targets_resolve(
        principal=admin, targets=[{"Key": "resource-groups:Name", "Values": ["web"]}], action=SEND
    )
    assert names(resolution, fleet) == {"web-dev", "web-prod"}


def test_targets_and_together(admin, fleet):
    targets = [{"Key": "tag:Env", "Values": ["dev"]}, {"Key": "tag:Role", "Values": ["web"]}]
    resolution = targets_resolve(principal=admin, targets=targets, action=SEND)
    assert names(resolution, fleet) == {"web-dev"}
    assert resolution.as_dict()["Total"] == 1


def test_the_operator_reaches_only_dev_nodes_and_named_prod_nodes_are_reported(operator, fleet):
    tagged = targets_resolve(
        principal=operator, targets=[{"Key": "tag:Role", "Values": ["web"]}], action=SEND
    )
    assert names(tagged, fleet) == {"web-dev"}
    assert tagged.refused_ids == []  # not named, so not reported
    named = targets_resolve(
        principal=operator,
        targets=[{"Key": "InstanceIds", "Values": [fleet["web-prod"].pk, fleet["web-dev"].pk]}],
        action=SEND,
    )
    assert names(named, fleet) == {"web-dev"}
    assert named.refused_ids == [fleet["web-prod"].pk]


def test_a_scoped_principal_cannot_tell_unknown_ids_from_refused_ones(operator, fleet):
    resolution = targets_resolve(
        principal=operator, targets=[{"Key": "InstanceIds", "Values": [UNKNOWN_ID]}], action=SEND
    )
    assert resolution.refused_ids == [UNKNOWN_ID] and resolution.unknown_ids == []


def test_an_unknown_or_forbidden_group_is_an_error(admin, operator, fleet):
    with pytest.raises(ResourceGroupNotFound):
        targets_resolve(
            principal=admin, targets=[{"Key": "resource-groups:Name", "Values": ["x"]}], action=SEND
        )
    ResourceGroupFactory(name="web")
    with pytest.raises(AccessDenied):
        targets_resolve(
            principal=operator,
            targets=[{"Key": "resource-groups:Name", "Values": ["web"]}],
            action=SEND,
        )


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ([], "at least one"),
        ("tag:Env", "at least one"),
        ([{"Key": "tag:Env", "Values": ["dev"]}] * 6, "at most 5"),
        ([{"Key": "tag:Env", "Values": [f"v{i}" for i in range(51)]}], "at most 50"),
        ([{"Key": "InstanceIds", "Values": ["i-0123"]}], "not a managed node id"),
        ([{"Key": "tag:Env", "Values": []}], "at least one value"),
        ([{"Key": "tag:Env"}], "must be"),
        ([{"Key": "tag:aws:x", "Values": ["v"]}], "reserved prefix"),
        ([{"Key": "tag-key", "Values": ["bad|key"]}], "may hold only"),
        ([{"Key": "ParameterValues", "Values": ["x"]}], "unknown key"),
        ([{"Key": "tag:Env", "Values": [1]}], "every value is text"),
    ],
)
def test_malformed_targets_are_invalid_target(admin, targets, message):
    with pytest.raises(InvalidTarget) as refused:
        targets_resolve(principal=admin, targets=targets, action=SEND)
    assert message in refused.value.message


def test_at_most_50_instance_ids(admin):
    ids = [f"mi-{i:017x}" for i in range(50)]
    targets_resolve(principal=admin, targets=[{"Key": "InstanceIds", "Values": ids}], action=SEND)
    with pytest.raises(InvalidTarget):
        targets_resolve(
            principal=admin,
            targets=[{"Key": "InstanceIds", "Values": [*ids, "mi-" + "f" * 17]}],
            action=SEND,
        )
