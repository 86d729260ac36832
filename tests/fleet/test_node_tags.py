"""Tags on nodes: one node at a time, many at once, under policies scoped by tags."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from bosun.lib.errors import AccessDenied
from fleet.exceptions import FleetValidationError, InvalidInstanceId, TooManyTagsError
from fleet.models import NodeEvent, NodeTag
from fleet.services import node_tags_add, node_tags_bulk_edit, node_tags_remove
from tests.factories import ManagedNodeFactory

pytestmark = pytest.mark.django_db


def tags_of(node):
    return dict(NodeTag.objects.filter(node=node).values_list("key", "value"))


def test_adding_tags_sets_new_keys_and_overwrites_existing_ones(admin, dev_node):
    result = node_tags_add(
        principal=admin, node_id=dev_node.pk, tags={"Role": "db", "Team": "platform"}
    )
    assert result == {"Env": "dev", "Role": "db", "Team": "platform"}
    assert tags_of(dev_node) == result


def test_tags_may_come_in_aws_shape(admin, dev_node):
    node_tags_add(principal=admin, node_id=dev_node.pk, tags=[{"Key": "Team", "Value": "ops"}])
    assert tags_of(dev_node)["Team"] == "ops"


def test_a_tag_change_is_audited_and_written_to_the_node_timeline(admin, dev_node):
    node_tags_add(principal=admin, node_id=dev_node.pk, tags={"Team": "ops"})
    event = AuditEvent.objects.get(action="ssm:AddTagsToResource")
    assert event.outcome == "success"
    assert event.resources == [f"arn:aws:ssm:us-east-1:000000000000:managed-instance/{dev_node.pk}"]
    assert NodeEvent.objects.filter(node=dev_node, kind="tags").exists()


def test_removing_tags_ignores_keys_the_node_lacks(admin, dev_node):
    assert node_tags_remove(principal=admin, node_id=dev_node.pk, keys=["Role", "Nope"]) == {
        "Env": "dev"
    }
    assert AuditEvent.objects.get(action="ssm:RemoveTagsFromResource").outcome == "success"


def test_a_node_holds_at_most_50_tags(admin):
    node = ManagedNodeFactory(tags={f"k{i}": "v" for i in range(49)})
    node_tags_add(principal=admin, node_id=node.pk, tags={"k0": "overwritten", "k49": "v"})
    with pytest.raises(TooManyTagsError):
        node_tags_add(principal=admin, node_id=node.pk, tags={"one-too-many": "v"})
    assert len(tags_of(node)) == 50
    assert tags_of(node)["k0"] == "overwritten"


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"aws:Name": "x"}, "reserved prefix"),
        ({"": "x"}, "1-128 characters"),
        ({"Env": "a|b"}, "may hold only"),
        ({}, "at least one"),
    ],
)
def test_invalid_tags_are_refused_and_nothing_changes(admin, dev_node, tags, message):
    with pytest.raises(FleetValidationError) as refused:
        node_tags_add(principal=admin, node_id=dev_node.pk, tags=tags)
    assert message in refused.value.message
    assert tags_of(dev_node) == {"Env": "dev", "Role": "web"}


def test_a_tagger_scoped_to_dev_tags_dev_nodes_only(dev_tagger, dev_node, prod_node):
    node_tags_add(principal=dev_tagger, node_id=dev_node.pk, tags={"Team": "ops"})
    with pytest.raises(AccessDenied):
        node_tags_add(principal=dev_tagger, node_id=prod_node.pk, tags={"Team": "ops"})
    assert "Team" not in tags_of(prod_node)
    denial = AuditEvent.objects.get(action="ssm:AddTagsToResource", outcome="denied")
    assert prod_node.pk in denial.resources[0]


def test_the_operator_sees_dev_nodes_but_may_not_tag_them(operator, dev_node):
    with pytest.raises(AccessDenied):
        node_tags_add(principal=operator, node_id=dev_node.pk, tags={"Team": "ops"})


def test_an_unknown_node_is_refused_to_a_scoped_principal_and_unknown_to_an_admin(
    admin, dev_tagger
):
    with pytest.raises(AccessDenied):
        node_tags_add(principal=dev_tagger, node_id="mi-00000000000000000", tags={"A": "b"})
    with pytest.raises(InvalidInstanceId):
        node_tags_add(principal=admin, node_id="mi-00000000000000000", tags={"A": "b"})


def test_a_deregistered_node_keeps_its_tags(admin):
    node = ManagedNodeFactory(status="Deregistered", tags={"Env": "dev"})
    with pytest.raises(InvalidInstanceId):
        node_tags_add(principal=admin, node_id=node.pk, tags={"Team": "ops"})


def test_bulk_tagging_touches_allowed_nodes_and_reports_the_refused(
    dev_tagger, dev_node, prod_node
):
    other_dev = ManagedNodeFactory(tags={"Env": "dev"})
    result = node_tags_bulk_edit(
        principal=dev_tagger,
        node_ids=[dev_node.pk, prod_node.pk, other_dev.pk],
        add={"Patch": "weekly"},
    )
    assert sorted(result.changed) == sorted([dev_node.pk, other_dev.pk])
    assert result.refused == [prod_node.pk]
    assert "Patch" not in tags_of(prod_node)
    assert tags_of(other_dev)["Patch"] == "weekly"
    denial = AuditEvent.objects.get(action="ssm:AddTagsToResource", outcome="denied")
    assert len(denial.resources) == 1
    success = AuditEvent.objects.get(action="ssm:AddTagsToResource", outcome="success")
    assert len(success.resources) == 2


def test_bulk_removal_and_skipped_nodes(admin, dev_node):
    gone = ManagedNodeFactory(status="Deregistered", tags={"Role": "web"})
    full = ManagedNodeFactory(tags={f"k{i}": "v" for i in range(50)})
    result = node_tags_bulk_edit(
        principal=admin, node_ids=[dev_node.pk, gone.pk, "mi-00000000000000000"], remove=["Role"]
    )
    assert result.changed == [dev_node.pk]
    assert result.skipped == {
        gone.pk: "deregistered",
        "mi-00000000000000000": "no such managed node",
    }
    assert tags_of(gone) == {"Role": "web"}
    over = node_tags_bulk_edit(principal=admin, node_ids=[full.pk, dev_node.pk], add={"New": "1"})
    assert over.changed == [dev_node.pk]
    assert full.pk in over.skipped


def test_a_bulk_edit_does_one_thing_at_a_time(admin, dev_node):
    with pytest.raises(FleetValidationError):
        node_tags_bulk_edit(principal=admin, node_ids=[dev_node.pk], add={"A": "b"}, remove=["A"])
    with pytest.raises(FleetValidationError):
        node_tags_bulk_edit(principal=admin, node_ids=[], add={"A": "b"})
