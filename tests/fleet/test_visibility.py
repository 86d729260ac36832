"""Who sees which nodes: `visible_to`, and the plan behind it (fleet.scope)."""

from __future__ import annotations

import pytest

from access.authorization import Principal
from fleet.models import Activation, ManagedNode, ResourceGroup
from fleet.scope import Mode, node_scope
from tests.factories import (
    ActivationFactory,
    ManagedNodeFactory,
    ResourceGroupFactory,
    user_with_policy,
)

pytestmark = pytest.mark.django_db


def visible_ids(principal, action="ssm:DescribeInstanceInformation"):
    return set(ManagedNode.objects.visible_to(principal, action).values_list("id", flat=True))


def allow(actions, resource="*", condition=None):
    statement = {"Effect": "Allow", "Action": actions, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def test_an_admin_sees_every_node_without_evaluating_any(admin, dev_node, prod_node):
    assert node_scope(admin).mode is Mode.ALL
    assert visible_ids(admin) == {dev_node.pk, prod_node.pk}


def test_the_operator_sees_only_nodes_tagged_env_dev(operator, dev_node, prod_node):
    untagged = ManagedNodeFactory()
    scope = node_scope(operator)
    assert scope.mode is Mode.TAGS and scope.tag_keys == {"env"}
    assert visible_ids(operator) == {dev_node.pk}
    assert untagged.pk not in visible_ids(operator)


def test_the_auditor_and_the_outsider_see_no_node(auditor, outsider, dev_node):
    assert node_scope(auditor).mode is Mode.NONE
    assert visible_ids(auditor) == set()
    assert visible_ids(outsider) == set()


def test_a_deactivated_user_sees_nothing_whatever_their_policies(admin, dev_node):
    admin.user.is_active = False
    assert visible_ids(admin) == set()


def test_an_unconditional_grant_on_every_node_is_decided_once(dev_node, prod_node):
    user = user_with_policy(
        "nina", allow("ssm:DescribeInstanceInformation", "arn:aws:ssm:*:*:managed-instance/*")
    )
    assert node_scope(Principal(user=user)).mode is Mode.ALL
    assert visible_ids(Principal(user=user)) == {dev_node.pk, prod_node.pk}


def test_a_grant_on_parameters_only_is_known_to_reach_no_node(dev_node):
    user = user_with_policy(
        "pia", allow("ssm:DescribeInstanceInformation", "arn:aws:ssm:*:*:parameter/*")
    )
    assert node_scope(Principal(user=user)).mode is Mode.NONE


def test_a_grant_naming_one_node_is_decided_node_by_node(dev_node, prod_node):
    resource = f"arn:aws:ssm:*:*:managed-instance/{prod_node.pk}"
    user = user_with_policy("nick", allow("ssm:DescribeInstanceInformation", resource))
    principal = Principal(user=user)
    assert node_scope(principal).mode is Mode.NODE
    assert visible_ids(principal) == {prod_node.pk}


def test_an_explicit_deny_by_tag_hides_those_nodes(dev_node, prod_node):
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ssm:DescribeInstanceInformation", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "ssm:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/Env": "prod"}},
            },
        ],
    }
    principal = Principal(user=user_with_policy("dora", document))
    assert visible_ids(principal) == {dev_node.pk}


def test_a_condition_with_a_policy_variable_still_keys_on_the_tag_it_names(dev_node):
    condition = {"StringEquals": {"ssm:resourceTag/Owner": "${aws:username}"}}
    principal = Principal(
        user=user_with_policy("olga", allow("ssm:DescribeInstanceInformation", "*", condition))
    )
    mine = ManagedNodeFactory(tags={"Owner": "olga"})
    ManagedNodeFactory(tags={"Owner": "someone-else"})
    scope = node_scope(principal)
    assert scope.mode is Mode.TAGS and scope.tag_keys == {"owner"}
    assert visible_ids(principal) == {mine.pk}


def test_a_resource_tag_inside_a_variable_makes_every_tag_count(dev_node):
    condition = {"StringEquals": {"aws:username": "${ssm:resourceTag/Owner}"}}
    principal = Principal(
        user=user_with_policy("olga", allow("ssm:DescribeInstanceInformation", "*", condition))
    )
    mine = ManagedNodeFactory(tags={"Owner": "olga", "Env": "prod"})
    scope = node_scope(principal)
    assert scope.mode is Mode.TAGS and scope.tag_keys is None
    assert visible_ids(principal) == {mine.pk}


def test_tag_decisions_are_memoized_by_the_tags_that_matter(operator):
    ManagedNodeFactory.create_batch(20, tags={"Env": "dev"})
    ManagedNodeFactory.create_batch(20, tags={"Env": "prod"})
    scope = node_scope(operator)
    ManagedNode.objects.visible_to(operator, scope=scope).count()
    assert len(scope._memo) == 2


def test_visibility_composes_with_filters_and_pagination(operator):
    ManagedNodeFactory.create_batch(30, tags={"Env": "dev"})
    ManagedNodeFactory.create_batch(30, tags={"Env": "prod"})
    visible = ManagedNode.objects.filter(status="Online").visible_to(operator).order_by("name")
    assert visible.count() == 30
    assert len(visible[20:40]) == 10


def test_activations_are_all_or_nothing(admin, operator):
    ActivationFactory.create_batch(2)
    assert Activation.objects.visible_to(admin).count() == 2
    assert Activation.objects.visible_to(operator).count() == 0


def test_groups_are_decided_one_by_one_on_their_arn():
    ResourceGroupFactory(name="web")
    ResourceGroupFactory(name="db")
    user = user_with_policy(
        "gus", allow("resource-groups:GetGroup", "arn:aws:resource-groups:*:*:group/web")
    )
    names = ResourceGroup.objects.visible_to(Principal(user=user)).values_list("name", flat=True)
    assert list(names) == ["web"]
