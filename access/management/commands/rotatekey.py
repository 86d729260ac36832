"""`python manage.py rotatekey --key alias/aws/ssm|KEYID|ARN`: a new data-key generation.

New writes use the new generation; values sealed by older ones keep opening. Run by the
server's operator as the `system` principal and audited under AWS's name for on-demand
rotation, `kms:RotateKeyOnDemand`.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from access import kms
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

    def handle(self, *args: Any, key: str, **options: Any) -> None:
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
