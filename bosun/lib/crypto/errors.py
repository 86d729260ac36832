"""Exceptions of the key service, each carrying the AWS KMS error code its faces render."""

from __future__ import annotations

from bosun.lib.errors import BosunError


class CryptoError(BosunError):
    aws_code = "KMSInternalException"
    code = "crypto_error"
    http_status = 500


class DecryptionError(CryptoError):
    """Tampered blob, wrong context or wrong key: deliberately indistinguishable to the caller."""

    aws_code = "InvalidCiphertextException"
    code = "invalid_ciphertext"
    http_status = 400

    def __init__(self, message: str = "the ciphertext cannot be decrypted") -> None:
        super().__init__(message)


class MasterKeyError(CryptoError):
    """The master key file is missing, unreadable or malformed; the message names the file."""

    code = "master_key_error"


class UnknownMasterKeyError(DecryptionError, MasterKeyError):
    """A wrapped key names a master key the ring lacks: one was removed from the file too early.

    Both a decryption failure (the caller cannot open the value) and an operator problem (the
    message names the missing id so it can be restored from a backup).
    """

    aws_code = "KMSInternalException"
    code = "unknown_master_key"
    http_status = 500
