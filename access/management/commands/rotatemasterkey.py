"""`python manage.py rotatemasterkey`: a new master key, and every data key re-wrapped by it.

Online: the data keys themselves stay the same, so every ciphertext keeps opening while it
runs, and running processes pick the new master key up from the key file. Run by the server's
operator, so it acts as the `system` principal and is audited (there is no AWS action to
authorize: KMS has no customer-visible master key).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from access import kms
from access.models import DataKey
from audit.services import SYSTEM_PRINCIPAL, audit_record
from bosun.lib import crypto

ACTION = "kms:RotateMasterKey"


class Command(BaseCommand):
    help = "Add a new master key and re-wrap every data key under it."

    def handle(self, *args: Any, **options: Any) -> None:
        new_id = kms.master_key_rotate()
        rewrapped = sum(
            1
            for wrapped in DataKey.objects.values_list("wrapped", flat=True).iterator()
            if crypto.wrapped_key_master_id(bytes(wrapped)) == new_id
        )
        audit_record(
            principal=SYSTEM_PRINCIPAL,
            action=ACTION,
            outcome="success",
            params={"MasterKeyId": new_id, "DataKeysRewrapped": rewrapped},
            face="cli",
        )
        self.stdout.write(f"New master key: {new_id}\nData keys re-wrapped: {rewrapped}")
