"""`python manage.py rotatekey --key alias/aws/ssm|KEYID|ARN`: a new data-key generation.

New writes use the new generation; values sealed by older ones keep opening. Run by the
server's operator as the `system` principal and audited under AWS's name for on-demand
rotation, `kms:RotateKeyOnDemand`.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.core.management.base import BaseCommand, CommandError

from access import kms, reencrypt
from audit.services import SYSTEM_PRINCIPAL, audit_record

ACTION = "kms:RotateKeyOnDemand"


class Command(BaseCommand):
    help = "Give a key a new data-key generation for new writes; old values stay readable."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--key",
            default=kms.DEFAULT_ALIAS,
            help=f"key id, key ARN, alias or alias ARN (default {kms.DEFAULT_ALIAS})",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="re-encrypt stored values here and now instead of in the background",
        )

    def handle(self, *args: Any, key: str, wait: bool, **options: Any) -> None:
        try:
            target = kms.key_resolve(key)
        except kms.KeyNotFound as error:
            raise CommandError(error.message) from None
        data_key = kms.key_rotate(key=target)
        audit_record(
            principal=SYSTEM_PRINCIPAL,
            action=ACTION,
            outcome="success",
            resources=[kms.key_arn(target)],
            params={"KeyId": target.key_id, "Generation": data_key.generation},
            face="cli",
        )
        self.stdout.write(f"Key {target.key_id} now writes with generation {data_key.generation}")
        if wait:
            count = reencrypt.reencrypt_key(key=target)
            self.stdout.write(f"Re-encrypted {count} stored values under the new generation.")
        else:
            current_app.send_task(reencrypt.REENCRYPT_TASK, kwargs={"key_id": target.key_id})
            self.stdout.write("Stored values are being re-encrypted by a worker in the background.")
