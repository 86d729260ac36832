"""Hybrid activations: made by an admin, shown once, used by servers to register."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import transaction
from django.utils import timezone

from access.authorization import Principal, authorize
from fleet.codes import activation_code_hash, new_activation_code, new_activation_id
from fleet.exceptions import FleetValidationError, InvalidActivationId
from fleet.models import Activation
from fleet.scope import activation_arn
from fleet.services.common import audit
from fleet.tags import tags_as_list, tags_validated

CREATE_ACTIVATION = "ssm:CreateActivation"
DELETE_ACTIVATION = "ssm:DeleteActivation"
MAX_TEXT = 256
MAX_REGISTRATION_LIMIT = 1000
DEFAULT_EXPIRY = timedelta(hours=24)
MAX_EXPIRY = timedelta(days=30)
# A form posted a little after it was rendered may ask for "30 days from then".
_EXPIRY_SLACK = timedelta(minutes=5)


class NewActivation(NamedTuple):
    activation: Activation
    code: str  # the only copy: Bosun keeps its hash


def activation_create(
    *,
    principal: Principal,
    description: str = "",
    default_instance_name: str = "",
    registration_limit: int = 1,
    expires_at: datetime | None = None,
    tags: Mapping[str, str] | Iterable[Mapping[str, Any]] = (),
) -> NewActivation:
    """A new activation; its code is returned once and stored only as a hash."""
    authorize(principal, CREATE_ACTIVATION)
    now = timezone.now()
    expires_at = expires_at or now + DEFAULT_EXPIRY
    _check_text("The description", description)
    _check_text("The default instance name", default_instance_name)
    if isinstance(registration_limit, bool) or not isinstance(registration_limit, int):
        raise FleetValidationError("The registration limit is a whole number from 1 to 1000.")
    if not 1 <= registration_limit <= MAX_REGISTRATION_LIMIT:
        raise FleetValidationError(
            f"The registration limit is {registration_limit}; give 1 to {MAX_REGISTRATION_LIMIT}."
        )
    if expires_at <= now:
        raise FleetValidationError("The expiry must be in the future.")
    if expires_at > now + MAX_EXPIRY + _EXPIRY_SLACK:
        raise FleetValidationError("An activation expires within 30 days at most.")
    node_tags = tags_validated(tags)
    code = new_activation_code()
    with transaction.atomic():
        activation = Activation.objects.create(
            id=new_activation_id(),
            code_hash=activation_code_hash(code),
            description=description,
            default_instance_name=default_instance_name,
            registration_limit=registration_limit,
            node_tags=tags_as_list(node_tags),
            expires_at=expires_at,
            created_by=principal.user,
        )
        audit(
            principal,
            CREATE_ACTIVATION,
            [activation_arn(activation.id)],
            ActivationId=activation.id,
            Description=description,
            DefaultInstanceName=default_instance_name,
            RegistrationLimit=registration_limit,
            ExpirationDate=expires_at.isoformat(),
            Tags=tags_as_list(node_tags),
        )
    return NewActivation(activation, code)


def activation_delete(*, principal: Principal, activation_id: str) -> None:
    """Stops new registrations through the activation; nodes it registered stay."""
    authorize(principal, DELETE_ACTIVATION)
    if not Activation.objects.filter(pk=activation_id).exists():
        raise InvalidActivationId(f"There is no activation {activation_id}.")
    with transaction.atomic():
        Activation.objects.filter(pk=activation_id).delete()
        audit(
            principal,
            DELETE_ACTIVATION,
            [activation_arn(activation_id)],
            ActivationId=activation_id,
        )


def _check_text(label: str, text: object) -> None:
    if not isinstance(text, str):
        raise FleetValidationError(f"{label} must be text.")
    if len(text) > MAX_TEXT:
        raise FleetValidationError(f"{label} is {len(text)} characters; at most {MAX_TEXT}.")
    if not text.isprintable():
        raise FleetValidationError(f"{label} must be one line of printable text.")
