"""Writes of identity and access: managed policies and their attachments, access keys.

Every service takes the acting principal, authorizes first (before any transaction, so a
denial's audit event is never rolled back with it), owns its transaction and audits the change.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from access import kms
from access.authorization import Principal, authorize
from access.directory import user_arn
from access.exceptions import AccessKeyError, PolicyInvalid, PolicyReadOnly
from access.models import AccessKey, ManagedPolicy
from access.policy import PolicyError, parse_policy
from access.policy.builtin import BUILTIN_POLICIES
from bosun.lib.arn import iam_arn

MAX_ACCESS_KEYS_PER_USER = 2
ACCESS_KEY_PREFIX = "BKIA"
ACCESS_KEY_ID_PATTERN = re.compile(r"^[A-Z0-9]{20}$")
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9/+]{40}$")
_ID_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "/+"


def policy_arn(name: str) -> str:
    return iam_arn(f"policy/{name}")


def _audit(principal: Principal, action: str, resources: list[str], **params: Any) -> None:
    principal.record(action, resources=resources, params=params)


# --- Managed policies -----------------------------------------------------------------------


def builtin_policies_sync() -> None:
    """Create or refresh the shipped read-only policies (run at every start and release)."""
    for builtin in BUILTIN_POLICIES.values():
        document = json.dumps(builtin.document, indent=2)
        ManagedPolicy.objects.update_or_create(
            name=builtin.name,
            defaults={"description": builtin.description, "document": document, "builtin": True},
        )


def _validated(document: str) -> str:
    try:
        parse_policy(document)
    except PolicyError as error:
        raise PolicyInvalid(str(error)) from None
    return document


def policy_create(
    *, principal: Principal, name: str, document: str, description: str = ""
) -> ManagedPolicy:
    authorize(principal, "bosun:ManagePolicies", policy_arn(name))
    document = _validated(document)
    with transaction.atomic():
        if ManagedPolicy.objects.filter(name=name).exists():
            raise PolicyInvalid(f"A policy named {name} already exists")
        policy = ManagedPolicy.objects.create(name=name, document=document, description=description)
        _audit(principal, "bosun:CreatePolicy", [policy_arn(name)])
    return policy


def policy_update(
    *, principal: Principal, policy: ManagedPolicy, document: str, description: str
) -> ManagedPolicy:
    authorize(principal, "bosun:ManagePolicies", policy_arn(policy.name))
    if policy.builtin:
        raise PolicyReadOnly(f"{policy.name} is built in and cannot be changed; copy it instead")
    document = _validated(document)
    with transaction.atomic():
        policy.document, policy.description = document, description
        policy.save(update_fields=["document", "description", "updated_at"])
        _audit(principal, "bosun:UpdatePolicy", [policy_arn(policy.name)])
    return policy


def policy_delete(*, principal: Principal, policy: ManagedPolicy) -> None:
    authorize(principal, "bosun:ManagePolicies", policy_arn(policy.name))
    if policy.builtin:
        raise PolicyReadOnly(f"{policy.name} is built in and cannot be deleted")
    with transaction.atomic():
        policy.delete()
        _audit(principal, "bosun:DeletePolicy", [policy_arn(policy.name)])


def policy_attach(
    *,
    principal: Principal,
    policy: ManagedPolicy,
    user: User | None = None,
    group: Group | None = None,
) -> None:
    _policy_attachment(principal, policy, user, group, attach=True)


def policy_detach(
    *,
    principal: Principal,
    policy: ManagedPolicy,
    user: User | None = None,
    group: Group | None = None,
) -> None:
    _policy_attachment(principal, policy, user, group, attach=False)


def _policy_attachment(
    principal: Principal,
    policy: ManagedPolicy,
    user: User | None,
    group: Group | None,
    *,
    attach: bool,
) -> None:
    authorize(principal, "bosun:ManagePolicies", policy_arn(policy.name))
    with transaction.atomic():
        if user is not None:
            (policy.users.add if attach else policy.users.remove)(user)
        if group is not None:
            (policy.groups.add if attach else policy.groups.remove)(group)
        _audit(
            principal,
            "bosun:AttachPolicy" if attach else "bosun:DetachPolicy",
            [policy_arn(policy.name)],
            user=user.get_username() if user else None,
            group=group.name if group else None,
        )


# --- Access keys ----------------------------------------------------------------------------


def _key_action(principal: Principal, user: User) -> str:
    own = principal.user.pk == user.pk
    return "bosun:ManageOwnAccessKeys" if own else "bosun:ManageAccessKeys"


def secret_context(access_key: AccessKey) -> dict[str, str]:
    return _secret_context(access_key.access_key_id)


def _secret_context(access_key_id: str) -> dict[str, str]:
    # Binds the ciphertext to its key id: a secret copied onto another key's row won't open.
    return {"purpose": "access-key-secret", "access_key_id": access_key_id}


def access_key_create(
    *,
    principal: Principal,
    user: User,
    access_key_id: str | None = None,
    secret: str | None = None,
) -> tuple[AccessKey, str]:
    """A new key pair for `user`; the secret is returned once and stored only encrypted.

    `access_key_id`/`secret` import a known pair (for tests and migrations from AWS).
    """
    authorize(principal, _key_action(principal, user), user_arn(user))
    if (access_key_id is None) != (secret is None):
        raise AccessKeyError("Give both the access key id and the secret, or neither")
    if access_key_id is not None and not ACCESS_KEY_ID_PATTERN.match(access_key_id):
        raise AccessKeyError("An access key id is 20 upper-case letters and digits")
    if secret is not None and not SECRET_PATTERN.match(secret):
        raise AccessKeyError("A secret access key is 40 characters: letters, digits, / and +")
    access_key_id = access_key_id or ACCESS_KEY_PREFIX + "".join(
        secrets.choice(_ID_ALPHABET) for _ in range(16)
    )
    secret = secret or "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    key = kms.default_key()
    with transaction.atomic():
        if AccessKey.objects.select_for_update().filter(user=user).count() >= (
            MAX_ACCESS_KEYS_PER_USER
        ):
            raise AccessKeyError(
                f"{user.get_username()} already has {MAX_ACCESS_KEYS_PER_USER} access keys; "
                "delete one first (rotate: create the new one before deleting the old)"
            )
        if AccessKey.objects.filter(access_key_id=access_key_id).exists():
            raise AccessKeyError(f"The access key id {access_key_id} is already in use")
        ciphertext = kms.value_encrypt(
            key=key, plaintext=secret.encode(), context=_secret_context(access_key_id)
        )
        access_key = AccessKey.objects.create(
            access_key_id=access_key_id, user=user, secret_ciphertext=ciphertext
        )
        _audit(principal, "bosun:CreateAccessKey", [user_arn(user)], AccessKeyId=access_key_id)
    return access_key, secret


def access_key_set_status(*, principal: Principal, access_key: AccessKey, active: bool) -> None:
    authorize(principal, _key_action(principal, access_key.user), user_arn(access_key.user))
    with transaction.atomic():
        access_key.status = AccessKey.Status.ACTIVE if active else AccessKey.Status.INACTIVE
        access_key.save(update_fields=["status"])
        _audit(
            principal,
            "bosun:UpdateAccessKey",
            [user_arn(access_key.user)],
            AccessKeyId=access_key.access_key_id,
            Status=access_key.status,
        )


def access_key_delete(*, principal: Principal, access_key: AccessKey) -> None:
    authorize(principal, _key_action(principal, access_key.user), user_arn(access_key.user))
    with transaction.atomic():
        access_key.delete()
        _audit(
            principal,
            "bosun:DeleteAccessKey",
            [user_arn(access_key.user)],
            AccessKeyId=access_key.access_key_id,
        )


def access_key_secret(access_key: AccessKey) -> str:
    """The plaintext secret, for verifying a signature or a bearer token (system use only)."""
    return kms.value_decrypt(
        blob=bytes(access_key.secret_ciphertext),
        context=_secret_context(access_key.access_key_id),
    ).decode()


def access_key_mark_used(*, access_key: AccessKey, source_ip: str) -> None:
    """Record last use; at most once a minute per key, so a busy client costs no writes."""
    now = timezone.now()
    if access_key.last_used_at and (now - access_key.last_used_at).total_seconds() < 60:
        return
    AccessKey.objects.filter(pk=access_key.pk).update(
        last_used_at=now, last_used_ip=source_ip or None
    )
    # The instance may be remembered between requests (access.key_cache).
    access_key.last_used_at = now
    access_key.last_used_ip = source_ip or None
