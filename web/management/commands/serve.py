"""`python manage.py serve ROLE`: start one Bosun process role, or the whole embedded stack.

Roles (DESIGN.md §2): `embedded` (everything on one host, no external server), and for
production `web` (gunicorn, HTTP), `ws` (daphne, websockets), `worker` and `beat` (Celery).
Each role checks its configuration first, so a wrong value stops it with one line naming the
variable to fix.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
import time

from django.conf import settings
from django.contrib.staticfiles.finders import get_finders
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

from bosun.lib import preflight, roles
from bosun.lib.config import Config, ConfigError
from bosun.lib.supervisor import Role, Supervisor
from fleet.local_agent import local_agent_plan
from web import services

ROLES = ("embedded", "web", "ws", "worker", "beat")


class Command(BaseCommand):
    help = "Start a Bosun role: embedded (default), web, ws, worker or beat."
    requires_system_checks = []  # run once below, after the configuration checks

    def add_arguments(self, parser):
        parser.add_argument("role", nargs="?", default="embedded", choices=ROLES)

    def handle(self, *args, role: str, **options) -> None:
        config: Config = settings.BOSUN
        if role == "embedded":
            self._embedded(config)
            return
        preflight.check_production_stores(config)
        if role in {"web", "ws"}:
            preflight.check_port_free(config.host, config.port)
        preflight.check_redis(config)
        preflight.check_database(config)
        if role == "web":
            preflight.check_static_collected()
        self.check(display_num_errors=False)
        argv = {
            "web": roles.web_argv,
            "ws": roles.ws_argv,
            "worker": roles.worker_argv,
            "beat": roles.beat_argv,
        }[role](config)
        sys.stdout.flush()
        os.execv(argv[0], argv)  # noqa: S606 - replace this process with the role's server

    def _embedded(self, config: Config) -> None:
        if not config.embedded:
            raise ConfigError(
                "REDIS_URL: the embedded stack runs without Redis; unset REDIS_URL, or start the "
                "production roles (serve web|ws|worker|beat)"
            )
        started = time.monotonic()
        preflight.check_port_free(config.host, config.port)
        preflight.check_database(config)
        self.check(display_num_errors=False)
        self.stdout.write("Preparing the database…")
        admin = services.database_prepare(
            admin_password=config.admin_password, data_dir=config.data_dir
        )
        self._collect_static()
        agent = local_agent_plan(
            data_dir=config.data_dir,
            server_url=_local_url(config),
            admin_username=services.ADMIN_USERNAME,
        )
        # Children must not inherit our open SQLite handle.
        connections.close_all()

        supervisor = Supervisor(
            [
                Role("web", roles.ws_argv(config)),
                Role("worker", roles.worker_argv(config, with_beat=True)),
                # This host's own node; the stack is whole without it (e.g. deregistered).
                Role("agent", agent.argv, env=agent.env, optional=True),
            ],
            on_started=lambda: threading.Thread(
                target=self._announce, args=(config, admin, started), daemon=True
            ).start(),
        )
        self.supervisor = supervisor
        sys.exit(supervisor.run())

    def _collect_static(self) -> None:
        """Collect static files only when a source file changed since the last collection.

        Collecting re-hashes and re-compresses every file (seconds); skipping it keeps a second
        start fast.
        """
        digest = hashlib.sha256()
        for finder in get_finders():
            for path, storage in finder.list(["CVS", ".*", "*~"]):
                stat = os.stat(storage.path(path))
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        stamp = settings.STATIC_ROOT / ".sources"
        current = digest.hexdigest()
        if stamp.is_file() and stamp.read_text() == current:
            return
        self.stdout.write("Collecting static files…")
        call_command("collectstatic", interactive=False, verbosity=0, clear=True)
        stamp.write_text(current)

    def _announce(self, config: Config, admin: services.FirstAdmin, started: float) -> None:
        if not _wait_for_port(config.host, config.port, timeout=60):
            self.supervisor.say("bosun", "the web server did not start listening within 60 s")
            return
        lines = [f"Bosun is running at {config.url} (ready in {time.monotonic() - started:.1f}s)"]
        if admin.generated_password:
            lines += [
                "Sign in as admin with this password (shown once; also kept in "
                f"{admin.password_file}):",
                f"    {admin.generated_password}",
            ]
        elif admin.created:
            lines.append("Sign in as admin with the password from BOSUN_ADMIN_PASSWORD.")
        lines.append("Press Ctrl-C to stop.")
        for line in lines:
            self.supervisor.say("bosun", line)


def _local_url(config: Config) -> str:
    """How a process on this host reaches the server (a wildcard bind is not an address)."""
    host = "127.0.0.1" if config.host in {"0.0.0.0", "::"} else config.host  # noqa: S104
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.port}"


def _wait_for_port(host: str, port: int, timeout: float) -> bool:
    target = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((target, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False
