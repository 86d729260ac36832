"""The key service, like KMS: named keys, aliases, data-key generations, envelope encryption.

Ciphertexts name the data key that made them (`<key id>/<generation>`), so a rotated key keeps
opening old values while new writes use its newest generation; the master key that wraps the
data keys lives in a file (bosun.lib.crypto), never in the database. Decryption on behalf of a
person is an authorized action (`kms:Decrypt` on the key); the callers that ask for it on
their own behalf (the AWS endpoint's SigV4 check reading an access key's secret) say so with
`as_system=True`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence

from django.conf import settings
from django.db import IntegrityError, transaction

from access.authorization import Principal, authorize
from access.models import DataKey, EncryptionKey, KeyAlias
from bosun.lib import crypto
from bosun.lib.arn import arn

DEFAULT_ALIAS = "alias/aws/ssm"
# Clients such as chamber send an alias of their own that nobody created: like SSM in practice,
# an alias that does not exist means the default key.
ALIAS_PREFIX = "alias/"


class KeyNotFound(crypto.CryptoError):
    aws_code = "NotFoundException"
    code = "key_not_found"
    http_status = 400


@functools.cache
def _master_file(path: str) -> crypto.MasterKeyFile:
    return crypto.MasterKeyFile(path)


def master_ring() -> crypto.MasterKeyRing:
    return _master_file(str(settings.BOSUN.master_key_file)).ring()


def key_arn(key: EncryptionKey) -> str:
    return key_id_arn(key.key_id)


def key_id_arn(key_id: str) -> str:
    return arn("kms", f"key/{key_id}")


def _wrap_context(key_id: str, generation: int) -> dict[str, str]:
    # Binds a wrapped data key to its row: swapping two rows' wrapped keys fails to open.
    return {"key": key_id, "generation": str(generation)}


def key_create(*, description: str = "", alias: str | None = None) -> EncryptionKey:
    with transaction.atomic():
        key = EncryptionKey.objects.create(key_id=str(uuid.uuid4()), description=description)
        _add_generation(key, 1)
        if alias:
            KeyAlias.objects.create(name=alias, key=key)
    return key


def _add_generation(key: EncryptionKey, generation: int) -> DataKey:
    _, wrapped = crypto.generate_data_key(
        master_ring(), context=_wrap_context(key.key_id, generation)
    )
    return DataKey.objects.create(key=key, generation=generation, wrapped=wrapped)


def default_key() -> EncryptionKey:
    alias = KeyAlias.objects.select_related("key").filter(name=DEFAULT_ALIAS).first()
    if alias is not None:
        return alias.key
    try:
        with transaction.atomic():
            return key_create(
                description="Default key for SecureString parameters", alias=DEFAULT_ALIAS
            )
    except IntegrityError:  # another process created it first: the unique alias decides
        return KeyAlias.objects.select_related("key").get(name=DEFAULT_ALIAS).key


def key_resolve(key_ref: str | None) -> EncryptionKey:
    """A key by id, key ARN, alias name or alias ARN; None or an unknown alias: the default."""
    if not key_ref:
        return default_key()
    ref = key_ref.split(":", 5)[5] if key_ref.startswith("arn:") else key_ref
    if ref.startswith("key/"):
        ref = ref[len("key/") :]
    if ref.startswith(ALIAS_PREFIX):
        alias = KeyAlias.objects.select_related("key").filter(name=ref).first()
        return alias.key if alias is not None else default_key()
    key = EncryptionKey.objects.filter(key_id=ref).first()
    if key is None:
        raise KeyNotFound(f"Key '{key_ref}' does not exist")
    return key


def key_rotate(*, key: EncryptionKey) -> DataKey:
    """A new data-key generation: new writes use it, older ciphertexts still open."""
    with transaction.atomic():
        locked = EncryptionKey.objects.select_for_update().get(pk=key.pk)
        newest = locked.data_keys.order_by("-generation").first()
        return _add_generation(locked, (newest.generation if newest else 0) + 1)


def value_encrypt(*, key: EncryptionKey, plaintext: bytes, context: Mapping[str, str]) -> bytes:
    data_key = key.data_keys.order_by("-generation").first()
    if data_key is None or not key.enabled:
        raise KeyNotFound(f"Key '{key.key_id}' is disabled or has no data key")
    return crypto.encrypt(
        _plaintext_data_key(data_key.pk, bytes(data_key.wrapped), key.key_id, data_key.generation),
        plaintext,
        key_id=f"{key.key_id}/{data_key.generation}",
        context=context,
    )


def ciphertext_key(blob: bytes) -> EncryptionKey:
    """The named key a ciphertext was made with (to authorize kms:Decrypt on it)."""
    key_id, _, _ = crypto.peek_key_id(blob).partition("/")
    key = EncryptionKey.objects.filter(key_id=key_id).first()
    if key is None:
        raise crypto.DecryptionError("The ciphertext refers to a key that does not exist")
    return key


def value_decrypt(*, blob: bytes, context: Mapping[str, str]) -> bytes:
    """Open a ciphertext. Callers authorize `kms:Decrypt` on ciphertext_key(blob) first."""
    key_id, _, generation = crypto.peek_key_id(blob).partition("/")
    if not generation.isdigit():
        raise crypto.DecryptionError("The ciphertext refers to a data key that does not exist")
    ref = (key_id, int(generation))
    cached = _data_keys.get(ref)
    if cached is not None:
        try:
            return crypto.decrypt(_plaintext_data_key(*cached), blob, context=context)
        except crypto.CryptoError:
            _data_keys.pop(ref, None)  # re-wrapped or gone since: read the row again
    data_key = DataKey.objects.filter(key__key_id=key_id, generation=ref[1]).first()
    if data_key is None:
        raise crypto.DecryptionError("The ciphertext refers to a data key that does not exist")
    found = (data_key.pk, bytes(data_key.wrapped), key_id, data_key.generation)
    plaintext = crypto.decrypt(_plaintext_data_key(*found), blob, context=context)
    if len(_data_keys) >= _DATA_KEY_CACHE_SIZE:
        _data_keys.clear()
    _data_keys[ref] = found
    return plaintext


# (key id, generation) → the data key row as last read. A data key's plaintext never changes
# (a master-key rotation only re-wraps it), so a hot secret's read skips the lookup; a row
# re-wrapped under a master key since removed from the ring fails to unwrap and is read again.
_DATA_KEY_CACHE_SIZE = 1024
_data_keys: dict[tuple[str, int], tuple[int, bytes, str, int]] = {}


@functools.lru_cache(maxsize=256)
def _plaintext_data_key(pk: int, wrapped: bytes, key_id: str, generation: int) -> bytes:
    # Keyed by the wrapped bytes too, so a re-wrapped row is unwrapped afresh.
    return crypto.unwrap_data_key(master_ring(), wrapped, context=_wrap_context(key_id, generation))


def master_key_rotate() -> str:
    """Add a new master key and re-wrap every data key under it (data keys stay the same)."""
    path = settings.BOSUN.master_key_file
    new_id = crypto.add_master_key(path)
    ring = master_ring()
    for data_key in DataKey.objects.select_related("key").iterator():
        if crypto.wrapped_key_master_id(data_key.wrapped) == ring.current_id:
            continue
        data_key.wrapped = crypto.rewrap_data_key(
            ring,
            data_key.wrapped,
            context=_wrap_context(data_key.key.key_id, data_key.generation),
        )
        data_key.save(update_fields=["wrapped"])
    return new_id


def value_decrypt_for(
    *,
    principal: Principal,
    blob: bytes,
    context: Mapping[str, str],
    resources: Sequence[str] = (),
) -> bytes:
    """Open a ciphertext for a person: `kms:Decrypt` on its key is authorized, and the read of
    the secret is audited (naming `resources`, e.g. the parameter, never the value)."""
    # The key is named by the ciphertext itself: no row is needed to authorize on its ARN
    # (a ciphertext naming a key that does not exist fails to open below).
    key_id, _, _ = crypto.peek_key_id(blob).partition("/")
    resource = key_id_arn(key_id)
    authorize(principal, "kms:Decrypt", resource)
    plaintext = value_decrypt(blob=blob, context=context)
    principal.record("kms:Decrypt", resources=[resource, *resources])
    return plaintext
