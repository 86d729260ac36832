"""Re-encrypting stored values under a key's newest data-key generation after a rotation.

Apps register the model fields that hold key-service ciphertexts together with the context
each row's value is bound to; the background job walks them, opens every value sealed by an
older generation of the rotated key and seals it again with the newest one. A row changed
meanwhile is left alone (its new value already uses the newest generation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction

from access import kms
from access.models import EncryptionKey
from bosun.lib import crypto

REENCRYPT_TASK = "access.tasks.reencrypt_after_rotation"


@dataclass(frozen=True)
class SealedField:
    model: type[models.Model]
    field: str
    context_of: Callable[[Any], Mapping[str, str]]


_fields: dict[tuple[str, str], SealedField] = {}


def register(
    model: type[models.Model], field: str, context_of: Callable[[Any], Mapping[str, str]]
) -> None:
    _fields[(model._meta.label, field)] = SealedField(model, field, context_of)


def reencrypt_key(*, key: EncryptionKey, chunk_size: int = 500) -> int:
    """Re-seal every registered value of `key` made by an older generation; returns the count."""
    newest = key.data_keys.order_by("-generation").first()
    if newest is None:
        return 0
    current_ref = f"{key.key_id}/{newest.generation}"
    count = 0
    for sealed in _fields.values():
        rows = (
            sealed.model._default_manager.exclude(**{f"{sealed.field}__isnull": True})
            .only("pk", sealed.field)
            .iterator(chunk_size=chunk_size)
        )
        for row in rows:
            blob = bytes(getattr(row, sealed.field))
            ref = crypto.peek_key_id(blob)
            if ref == current_ref or not ref.startswith(f"{key.key_id}/"):
                continue
            count += _reseal(sealed, row.pk, blob, key)
    return count


def _reseal(sealed: SealedField, pk: Any, blob: bytes, key: EncryptionKey) -> int:
    with transaction.atomic():
        row = sealed.model._default_manager.select_for_update().filter(pk=pk).first()
        if row is None or bytes(getattr(row, sealed.field)) != blob:
            return 0
        context = sealed.context_of(row)
        plaintext = kms.value_decrypt(blob=blob, context=context)
        setattr(row, sealed.field, kms.value_encrypt(key=key, plaintext=plaintext, context=context))
        row.save(update_fields=[sealed.field])
    return 1
