"""The envelope-encryption core: master key file, data keys, values, derived subkeys."""

from __future__ import annotations

import base64
import copy
import os
import pickle
import secrets
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bosun.lib.crypto import (
    KEY_BYTES,
    LEGACY_MASTER_KEY_ID,
    CryptoError,
    DecryptionError,
    MasterKeyError,
    MasterKeyFile,
    MasterKeyRing,
    UnknownMasterKeyError,
    add_master_key,
    decrypt,
    derive_subkey,
    derive_subkey_for,
    encode_context,
    encrypt,
    generate_data_key,
    load_master_keys,
    peek_key_id,
    remove_master_key,
    rewrap_data_key,
    unwrap_data_key,
    wrap_data_key,
    wrapped_key_master_id,
)

CONTEXT = {"parameter": "/app/db/password", "version": "3"}
SECRET = b"planted-secret-c0rrect-h0rse-battery-staple"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A key file exactly as bosun.lib.config generates it: one bare line, 0600."""
    path = tmp_path / "master.key"
    path.write_text(b64(secrets.token_bytes(32)) + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def ring(key_file: Path) -> MasterKeyRing:
    return load_master_keys(key_file)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- values --------------------------------------------------------------------------------


def test_a_value_round_trips_and_names_its_data_key():
    key = secrets.token_bytes(KEY_BYTES)
    blob = encrypt(key, SECRET, key_id="key-1/v2", context=CONTEXT)
    assert decrypt(key, blob, context=CONTEXT) == SECRET
    assert peek_key_id(blob) == "key-1/v2"


def test_an_empty_value_round_trips():
    key = secrets.token_bytes(KEY_BYTES)
    blob = encrypt(key, b"", key_id="k", context={})
    assert decrypt(key, blob, context={}) == b""


def test_a_blob_read_back_as_memoryview_decrypts():
    # psycopg hands bytea columns back as memoryview.
    key = secrets.token_bytes(KEY_BYTES)
    blob = encrypt(key, SECRET, key_id="k", context=CONTEXT)
    assert decrypt(memoryview(key), memoryview(blob), context=CONTEXT) == SECRET
    assert peek_key_id(memoryview(blob)) == "k"


def test_the_planted_secret_never_appears_in_the_blob():
    key = secrets.token_bytes(KEY_BYTES)
    blob = encrypt(key, SECRET, key_id="k", context=CONTEXT)
    assert SECRET not in blob
    assert SECRET[:8] not in blob
    assert base64.b64encode(SECRET)[:12] not in base64.b64encode(blob)


def test_the_same_plaintext_encrypts_differently_each_time():
    key = secrets.token_bytes(KEY_BYTES)
    blobs = {encrypt(key, SECRET, key_id="k", context=CONTEXT) for _ in range(50)}
    assert len(blobs) == 50
    nonces = {blob[3 : 3 + 12] for blob in blobs}  # header is 0x01, len, "k"
    assert len(nonces) == 50


@pytest.mark.parametrize(
    "other",
    [
        {"parameter": "/app/other", "version": "3"},  # moved to another row
        {"parameter": "/app/db/password", "version": "2"},  # moved to another version
        {"parameter": "/app/db/password"},  # a pair dropped
        {**CONTEXT, "extra": ""},  # a pair added
        {},
    ],
)
def test_a_value_moved_to_another_context_fails_to_open(other):
    key = secrets.token_bytes(KEY_BYTES)
    blob = encrypt(key, SECRET, key_id="k", context=CONTEXT)
    with pytest.raises(DecryptionError):
        decrypt(key, blob, context=other)


def test_context_order_does_not_matter():
    key = secrets.token_bytes(KEY_BYTES)
    blob = encrypt(key, SECRET, key_id="k", context={"a": "1", "b": "2"})
    assert decrypt(key, blob, context={"b": "2", "a": "1"}) == SECRET


def test_context_encoding_cannot_be_confused_by_separators():
    assert encode_context({"a": "b=c"}) != encode_context({"a=b": "c"})
    assert encode_context({"a": "b", "c": "d"}) != encode_context({"a": "b\x00c", "": "d"})
    assert encode_context(b"") != encode_context({})
    key = secrets.token_bytes(KEY_BYTES)
    blob = encrypt(key, SECRET, key_id="k", context={"a": "b=c"})
    with pytest.raises(DecryptionError):
        decrypt(key, blob, context={"a=b": "c"})


def test_bytes_context_binds_like_a_mapping():
    key = secrets.token_bytes(KEY_BYTES)
    blob = encrypt(key, SECRET, key_id="k", context=b"row:42")
    assert decrypt(key, blob, context=b"row:42") == SECRET
    with pytest.raises(DecryptionError):
        decrypt(key, blob, context=b"row:43")


def test_every_flipped_bit_fails_to_open():
    key = secrets.token_bytes(KEY_BYTES)
    blob = encrypt(key, b"short", key_id="k", context=CONTEXT)
    for index in range(len(blob)):
        for bit in range(8):
            tampered = bytearray(blob)
            tampered[index] ^= 1 << bit
            with pytest.raises(DecryptionError):
                decrypt(key, bytes(tampered), context=CONTEXT)


@pytest.mark.parametrize("cut", [0, 1, 2, 5, 16, -1])
def test_a_truncated_or_extended_blob_fails_to_open(cut):
    key = secrets.token_bytes(KEY_BYTES)
    blob = encrypt(key, SECRET, key_id="k", context=CONTEXT)
    with pytest.raises(DecryptionError):
        decrypt(key, blob[:cut], context=CONTEXT)
    with pytest.raises(DecryptionError):
        decrypt(key, blob + b"\x00", context=CONTEXT)


def test_an_unknown_format_version_fails_to_open_and_to_peek():
    key = secrets.token_bytes(KEY_BYTES)
    blob = b"\x02" + encrypt(key, SECRET, key_id="k", context=CONTEXT)[1:]
    with pytest.raises(DecryptionError):
        decrypt(key, blob, context=CONTEXT)
    with pytest.raises(DecryptionError):
        peek_key_id(blob)


def test_the_wrong_data_key_fails_with_the_same_message_as_tampering():
    key = secrets.token_bytes(KEY_BYTES)
    blob = encrypt(key, SECRET, key_id="k", context=CONTEXT)
    with pytest.raises(DecryptionError) as wrong_key:
        decrypt(secrets.token_bytes(KEY_BYTES), blob, context=CONTEXT)
    with pytest.raises(DecryptionError) as wrong_context:
        decrypt(key, blob, context={})
    assert str(wrong_key.value) == str(wrong_context.value)
    assert wrong_key.value.aws_code == "InvalidCiphertextException"


def test_misuse_is_refused_loudly():
    key = secrets.token_bytes(KEY_BYTES)
    with pytest.raises(ValueError):
        encrypt(key[:16], SECRET, key_id="k", context={})
    with pytest.raises(ValueError):
        encrypt(key, SECRET, key_id="", context={})
    with pytest.raises(ValueError):
        encrypt(key, SECRET, key_id="x" * 256, context={})
    with pytest.raises(TypeError):
        encrypt(key, "text", key_id="k", context={})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encrypt(key, SECRET, key_id="k", context={"version": 3})  # type: ignore[dict-item]


# -- data keys -----------------------------------------------------------------------------


def test_a_data_key_round_trips_through_wrapping(ring):
    plaintext, wrapped = generate_data_key(ring)
    assert len(plaintext) == KEY_BYTES
    assert plaintext not in wrapped
    assert unwrap_data_key(ring, wrapped) == plaintext
    assert wrapped_key_master_id(wrapped) == LEGACY_MASTER_KEY_ID


def test_a_wrapped_key_bound_to_its_owner_fails_for_another(ring):
    plaintext, wrapped = generate_data_key(ring, context={"key": "k-1"})
    assert unwrap_data_key(ring, wrapped, context={"key": "k-1"}) == plaintext
    with pytest.raises(DecryptionError):
        unwrap_data_key(ring, wrapped, context={"key": "k-2"})
    with pytest.raises(DecryptionError):
        unwrap_data_key(ring, wrapped)


def test_a_tampered_wrapped_key_fails_to_unwrap(ring):
    _plaintext, wrapped = generate_data_key(ring)
    for index in range(len(wrapped)):
        tampered = bytearray(wrapped)
        tampered[index] ^= 0x01
        with pytest.raises(DecryptionError):
            unwrap_data_key(ring, bytes(tampered))


def test_a_value_blob_is_not_accepted_as_a_wrapped_key(ring):
    plaintext, _wrapped = generate_data_key(ring)
    value = encrypt(plaintext, secrets.token_bytes(32), key_id="legacy", context=b"")
    with pytest.raises(DecryptionError):
        unwrap_data_key(ring, value)


def test_another_master_key_cannot_unwrap(ring, tmp_path):
    other_file = tmp_path / "other.key"
    other_file.write_text(b64(secrets.token_bytes(32)))
    _plaintext, wrapped = generate_data_key(ring)
    with pytest.raises(DecryptionError):
        unwrap_data_key(load_master_keys(other_file), wrapped)


# -- master key rotation -------------------------------------------------------------------


def test_master_rotation_keeps_old_keys_readable_and_rewrap_moves_them(key_file):
    before = load_master_keys(key_file)
    data_key, wrapped = generate_data_key(before, context={"key": "k-1"})
    value = encrypt(data_key, SECRET, key_id="k-1", context=CONTEXT)

    new_id = add_master_key(key_file)
    after = load_master_keys(key_file)
    assert after.current_id == new_id
    assert after.ids == (new_id, LEGACY_MASTER_KEY_ID)
    assert unwrap_data_key(after, wrapped, context={"key": "k-1"}) == data_key

    rewrapped = rewrap_data_key(after, wrapped, context={"key": "k-1"})
    assert wrapped_key_master_id(rewrapped) == new_id
    same_key = unwrap_data_key(after, rewrapped, context={"key": "k-1"})
    assert decrypt(same_key, value, context=CONTEXT) == SECRET

    remove_master_key(key_file, LEGACY_MASTER_KEY_ID)
    retired = load_master_keys(key_file)
    assert retired.ids == (new_id,)
    assert unwrap_data_key(retired, rewrapped, context={"key": "k-1"}) == data_key
    with pytest.raises(UnknownMasterKeyError, match=LEGACY_MASTER_KEY_ID) as missing:
        unwrap_data_key(retired, wrapped, context={"key": "k-1"})
    assert isinstance(missing.value, DecryptionError)
    assert str(key_file) in str(missing.value)


def test_each_rotation_adds_a_distinct_current_key(key_file):
    first = add_master_key(key_file)
    second = add_master_key(key_file)
    ring = load_master_keys(key_file)
    assert ring.ids == (second, first, LEGACY_MASTER_KEY_ID)
    _plaintext, wrapped = generate_data_key(ring)
    assert wrapped_key_master_id(wrapped) == second


def test_the_rotated_key_file_stays_private_and_keeps_its_old_key(key_file):
    old_line = key_file.read_text().strip()
    add_master_key(key_file)
    assert mode(key_file) == 0o600
    assert f"{LEGACY_MASTER_KEY_ID}:{old_line}" in key_file.read_text().splitlines()
    leftovers = [p.name for p in key_file.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_the_current_or_an_unknown_master_key_cannot_be_removed(key_file):
    new_id = add_master_key(key_file)
    with pytest.raises(MasterKeyError, match="current"):
        remove_master_key(key_file, new_id)
    with pytest.raises(MasterKeyError, match="not in"):
        remove_master_key(key_file, "nope")


def test_running_processes_see_a_rotation_without_restarting(key_file):
    source = MasterKeyFile(key_file)
    first = source.ring()
    assert source.ring() is first  # unchanged file: no re-read
    new_id = add_master_key(key_file)
    assert source.ring().current_id == new_id


def test_a_vanished_key_file_is_an_error_naming_it(key_file):
    source = MasterKeyFile(key_file)
    source.ring()
    key_file.unlink()
    with pytest.raises(MasterKeyError, match=str(key_file)):
        source.ring()


# -- the key file --------------------------------------------------------------------------


def test_the_legacy_single_line_file_is_one_key_with_a_fixed_id(key_file):
    ring = load_master_keys(key_file)
    assert ring.ids == (LEGACY_MASTER_KEY_ID,)
    assert ring.current_id == LEGACY_MASTER_KEY_ID


def test_the_multi_key_file_puts_the_first_line_current(tmp_path):
    path = tmp_path / "keys"
    path.write_text(
        "# comment\n\n"
        f"2025b:{b64(secrets.token_bytes(32))}\n"
        f"2025a:{b64(secrets.token_bytes(32)).rstrip('=')}\n"  # padding is optional
    )
    assert load_master_keys(path).ids == ("2025b", "2025a")


@pytest.mark.parametrize(
    "content",
    [
        "",
        "# only a comment\n",
        "not base64 at all!\n",
        b64(secrets.token_bytes(16)) + "\n",  # too short for AES-256
        f"bad id:{b64(secrets.token_bytes(32))}\n",
        f":{b64(secrets.token_bytes(32))}\n",
        f"a:{b64(secrets.token_bytes(32))}\na:{b64(secrets.token_bytes(32))}\n",
        f"a:{b64(secrets.token_bytes(32))}\n{b64(secrets.token_bytes(32))}\n"
        f"{b64(secrets.token_bytes(32))}\n",  # two bare keys would share the legacy id
    ],
)
def test_a_malformed_key_file_is_an_error_naming_the_file(tmp_path, content):
    path = tmp_path / "master.key"
    path.write_text(content)
    with pytest.raises(MasterKeyError, match=str(path)):
        load_master_keys(path)


def test_a_malformed_line_is_named_but_never_echoed(tmp_path):
    path = tmp_path / "master.key"
    almost_a_key = b64(secrets.token_bytes(31))
    path.write_text(f"# header\n{almost_a_key}\n")
    with pytest.raises(MasterKeyError) as error:
        load_master_keys(path)
    assert "line 2" in str(error.value)
    assert almost_a_key[:10] not in str(error.value)


def test_a_missing_key_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "absent.key"
    with pytest.raises(MasterKeyError, match=f"{path} does not exist"):
        load_master_keys(path)
    with pytest.raises(MasterKeyError, match=str(path)):
        add_master_key(path)


def test_an_unreadable_key_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "dir.key"
    path.mkdir()  # unreadable as a file even for root, unlike chmod 000
    with pytest.raises(MasterKeyError, match=f"cannot read master key file {path}"):
        load_master_keys(path)


def test_the_ring_never_shows_key_bytes(key_file):
    raw = base64.urlsafe_b64decode(key_file.read_text().strip())
    ring = load_master_keys(key_file)
    for shown in (repr(ring), str(ring), f"{ring}", repr(MasterKeyFile(key_file))):
        assert raw.hex() not in shown
        assert key_file.read_text().strip() not in shown
    assert repr(ring) == "MasterKeyRing(current='legacy', ids=('legacy',))"
    assert not hasattr(ring, "__dict__")


def test_the_ring_cannot_be_pickled_or_copied(ring):
    with pytest.raises(TypeError):
        pickle.dumps(ring)
    with pytest.raises(TypeError):
        copy.deepcopy(ring)


def test_errors_belong_to_one_hierarchy():
    assert issubclass(DecryptionError, CryptoError)
    assert issubclass(MasterKeyError, CryptoError)
    assert issubclass(UnknownMasterKeyError, DecryptionError)
    assert issubclass(UnknownMasterKeyError, MasterKeyError)


# -- derived subkeys -----------------------------------------------------------------------


def test_subkeys_are_stable_per_purpose_and_distinct_across_purposes(ring):
    audit = derive_subkey(ring, "audit-checkpoint")
    assert len(audit) == 32
    assert derive_subkey(ring, "audit-checkpoint") == audit
    assert derive_subkey(ring, "something-else") != audit
    assert derive_subkey(ring, "audit-checkpoint", length=64)[:32] != audit


def test_a_subkey_from_a_rotated_master_key_can_still_be_derived(key_file):
    old_ring = load_master_keys(key_file)
    old_subkey = derive_subkey(old_ring, "audit-checkpoint")
    add_master_key(key_file)
    ring = load_master_keys(key_file)
    assert derive_subkey(ring, "audit-checkpoint") != old_subkey
    assert derive_subkey_for(ring, LEGACY_MASTER_KEY_ID, "audit-checkpoint") == old_subkey
    with pytest.raises(UnknownMasterKeyError):
        derive_subkey_for(ring, "gone", "audit-checkpoint")


def test_the_master_key_is_only_ever_hkdf_input(key_file, ring):
    raw = base64.urlsafe_b64decode(key_file.read_text().strip())
    assert derive_subkey(ring, "x") != raw
    # White-box: with the right associated data, the raw master key still cannot unwrap,
    # because the wrapping key is derived from it.
    _data_key, wrapped = generate_data_key(ring)
    header, nonce, sealed = wrapped[:8], wrapped[8:20], wrapped[20:]
    assert header == b"\x01\x06legacy"
    aad = b"bosun/data-key/v1\x00" + header + encode_context(b"")
    with pytest.raises(InvalidTag):
        AESGCM(raw).decrypt(nonce, sealed, aad)


def test_wrapping_the_same_data_key_twice_differs(ring):
    data_key, wrapped = generate_data_key(ring)
    again = wrap_data_key(ring, data_key)
    assert again != wrapped
    assert unwrap_data_key(ring, again) == data_key


def test_concurrent_rotations_lose_no_key(key_file):
    with ThreadPoolExecutor(max_workers=8) as pool:
        new_ids = list(pool.map(lambda _: add_master_key(key_file), range(8)))
    ring = load_master_keys(key_file)
    assert sorted(ring.ids) == sorted([*new_ids, LEGACY_MASTER_KEY_ID])
    assert ring.ids[-1] == LEGACY_MASTER_KEY_ID


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand a file to another user")
def test_root_rotating_the_key_leaves_it_owned_by_the_service_user(key_file):
    os.chown(key_file, 4321, 4321)
    add_master_key(key_file)
    owner = key_file.stat()
    assert (owner.st_uid, owner.st_gid, mode(key_file)) == (4321, 4321, 0o600)
