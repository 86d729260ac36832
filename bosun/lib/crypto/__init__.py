"""Envelope encryption: the pure core of Bosun's key service.

Three layers, as in AWS KMS:

* **Master keys (KEKs)** live only in the key file (``BOSUN_MASTER_KEY_FILE`` or
  ``DATA_DIR/master.key``), never in the database. Several may be present for online rotation;
  see ``masterkeys``.
* **Data keys** are random AES-256 keys kept in the database only wrapped under a master key.
  Rotating the master key re-wraps data keys and touches no value.
* **Values** are sealed under a data key with the caller's *encryption context* (e.g.
  ``{"parameter": "/app/db", "version": "3"}``) as associated data, so a ciphertext copied to
  another row fails to open. The blob names the data key that sealed it, so values written
  before a data-key rotation stay readable. Formats: see ``envelope``.

Nothing here touches Django or the database: the ``access`` app keeps named keys, aliases and
wrapped data keys, authorizes ``kms:Decrypt``, and calls this package.
"""

from bosun.lib.crypto.envelope import (
    Context,
    decrypt,
    encode_context,
    encrypt,
    generate_data_key,
    peek_key_id,
    rewrap_data_key,
    unwrap_data_key,
    wrap_data_key,
    wrapped_key_master_id,
)
from bosun.lib.crypto.errors import (
    CryptoError,
    DecryptionError,
    MasterKeyError,
    UnknownMasterKeyError,
)
from bosun.lib.crypto.masterkeys import (
    KEY_BYTES,
    LEGACY_MASTER_KEY_ID,
    Buffer,
    MasterKeyFile,
    MasterKeyRing,
    add_master_key,
    derive_subkey,
    derive_subkey_for,
    load_master_keys,
    parse_master_keys,
    remove_master_key,
)

__all__ = [
    "KEY_BYTES",
    "LEGACY_MASTER_KEY_ID",
    "Buffer",
    "Context",
    "CryptoError",
    "DecryptionError",
    "MasterKeyError",
    "MasterKeyFile",
    "MasterKeyRing",
    "UnknownMasterKeyError",
    "add_master_key",
    "decrypt",
    "derive_subkey",
    "derive_subkey_for",
    "encode_context",
    "encrypt",
    "generate_data_key",
    "load_master_keys",
    "parse_master_keys",
    "peek_key_id",
    "remove_master_key",
    "rewrap_data_key",
    "unwrap_data_key",
    "wrap_data_key",
    "wrapped_key_master_id",
]
