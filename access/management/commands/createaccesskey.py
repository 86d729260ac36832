"""`python manage.py createaccesskey --user NAME [--json]`, with `--access-key-id` and
`--secret-access-key` to import a known pair.

Prints the new pair once; the secret is kept only encrypted. Run by an operator on the
server, so it acts as the `system` principal with the rights of a superuser.
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from access import services
from access.authorization import Principal
from bosun.lib.errors import BosunError


class Command(BaseCommand):
    help = "Create an access key for a user and print it once."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="the user the key belongs to")
        parser.add_argument("--json", action="store_true", help="print JSON, as `aws iam` does")
        parser.add_argument("--access-key-id", help="import this key id (with the secret)")
        parser.add_argument("--secret-access-key", help="import this secret (with the key id)")

    def handle(self, *args, user, access_key_id, secret_access_key, **options):
        owner = get_user_model().objects.filter(username=user).first()
        if owner is None:
            raise CommandError(f"no user named {user!r}")
        try:
            key, secret = services.access_key_create(
                principal=operator_principal(),
                user=owner,
                access_key_id=access_key_id,
                secret=secret_access_key,
            )
        except BosunError as error:
            raise CommandError(error.message) from None
        if options["json"]:
            self.stdout.write(
                json.dumps({"AccessKeyId": key.access_key_id, "SecretAccessKey": secret})
            )
        else:
            self.stdout.write(f"AccessKeyId:     {key.access_key_id}\nSecretAccessKey: {secret}")
            self.stderr.write("The secret is shown only now; keep it somewhere safe.")


def operator_principal() -> Principal:
    """Commands run on the server by its operator: a superuser that exists only in memory."""
    user = get_user_model()(username="system", is_superuser=True, is_active=True)
    return Principal(user=user, face="cli")
