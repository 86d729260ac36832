"""Fleet fixtures: a small fleet of dev and prod nodes, and personas scoped by node tags."""

from __future__ import annotations

import pytest

from access.authorization import Principal
from tests.factories import ManagedNodeFactory, user_with_policy

# A persona that may see and tag Env=dev nodes, and nothing else.
DEV_TAGGER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ssm:DescribeInstanceInformation",
                "ssm:AddTagsToResource",
                "ssm:RemoveTagsFromResource",
            ],
            "Resource": "arn:aws:ssm:*:*:managed-instance/*",
            "Condition": {"StringEquals": {"ssm:resourceTag/Env": "dev"}},
        }
    ],
}


@pytest.fixture
def dev_node(db):
    return ManagedNodeFactory(name="dev-web-1", tags={"Env": "dev", "Role": "web"})


@pytest.fixture
def prod_node(db):
    return ManagedNodeFactory(name="prod-web-1", tags={"Env": "prod", "Role": "web"})


@pytest.fixture
def admin(admin_user):
    return Principal(user=admin_user)


@pytest.fixture
def operator(operator_user):
    return Principal(user=operator_user)


@pytest.fixture
def auditor(auditor_user):
    return Principal(user=auditor_user)


@pytest.fixture
def outsider(outsider_user):
    return Principal(user=outsider_user)


@pytest.fixture
def dev_tagger(db):
    return Principal(user=user_with_policy("tess", DEV_TAGGER_POLICY))
