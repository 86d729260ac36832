"""`python manage.py bootstrap`: migrate and ensure the first admin (a production release step).

The embedded stack does the same at every start; in production run it once per release,
before starting the roles (the Procfile's `release` line).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from bosun.lib import preflight
from web import services


class Command(BaseCommand):
    help = "Apply database migrations and create the first admin if there is none."

    def handle(self, *args, **options) -> None:
        config = settings.BOSUN
        preflight.check_database(config)
        admin = services.database_prepare(
            admin_password=config.admin_password, data_dir=config.data_dir
        )
        self.stdout.write("Database is up to date.")
        if admin.generated_password:
            self.stdout.write(
                f"Created user admin with password {admin.generated_password} "
                f"(shown once; also kept in {admin.password_file})"
            )
        elif admin.created:
            self.stdout.write("Created user admin with the password from BOSUN_ADMIN_PASSWORD.")
