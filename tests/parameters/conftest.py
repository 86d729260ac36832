"""Parameter Store fixtures: principals for the personas and a reader scoped to one path."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from access.authorization import Principal
from access.models import ManagedPolicy
from access.services import builtin_policies_sync
from bosun.lib.errors import BosunError
from parameters import services
from tests.factories import UserFactory, user_with_policy
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.services import webhook_endpoint_create

# May read and decrypt /team/a/*, describe everything, and nothing else.
TEAM_A_READER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["ssm:GetParameter*", "ssm:DescribeParameters"],
            "Resource": "arn:aws:ssm:*:*:parameter/team/a/*",
        },
        {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*"},
    ],
}


@pytest.fixture
def admin(admin_user) -> Principal:
    return Principal(user=admin_user)


@pytest.fixture
def outsider(outsider_user) -> Principal:
    return Principal(user=outsider_user)


@pytest.fixture
def team_a_reader(db) -> Principal:
    return Principal(user=user_with_policy("tara", TEAM_A_READER_POLICY))


@pytest.fixture
def read_only(db) -> Principal:
    """The built-in ReadOnlyAccess: ssm:Get*/Describe*, no kms:Decrypt."""
    user = UserFactory(username="rory")
    builtin_policies_sync()
    ManagedPolicy.objects.get(name="ReadOnlyAccess").users.add(user)
    return Principal(user=user)


PutParameter = Callable[..., services.PutResult]


@pytest.fixture
def put(admin) -> PutParameter:
    """`put(name, value, type, **more)`: parameter_put as the admin unless `principal=` says."""

    def write(
        name: str,
        value: str = "value",
        parameter_type: str | None = "String",
        *,
        principal: Principal | None = None,
        **more: object,
    ) -> services.PutResult:
        return services.parameter_put(
            principal=principal or admin,
            name=name,
            value=value,
            parameter_type=parameter_type,
            **more,
        )

    return write


@pytest.fixture
def hook(admin) -> WebhookEndpoint:
    """A webhook endpoint subscribed to every parameter event (nothing is POSTed in tests:
    deliveries are queued rows, and the worker is only woken after a real commit)."""
    return webhook_endpoint_create(
        principal=admin,
        name="parameter-events",
        url="http://127.0.0.1:9/hook/",
        events=["parameter.*"],
    ).endpoint


def delivered(event_type: str | None = None) -> list[dict]:
    """The queued webhook bodies, oldest first, optionally of one event type."""
    rows = WebhookDelivery.objects.order_by("created_at", "pk")
    if event_type is not None:
        rows = rows.filter(event_type=event_type)
    return [json.loads(row.payload) for row in rows]


def refused(aws_code: str, call: Callable[[], object]) -> str:
    """Run `call`, which must fail with a Bosun error of `aws_code`; return its message."""
    with pytest.raises(BosunError) as caught:
        call()
    assert caught.value.aws_code == aws_code, f"{type(caught.value).__name__}: {caught.value}"
    return caught.value.message
