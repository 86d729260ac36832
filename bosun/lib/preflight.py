"""Start-up checks that turn a wrong setting into one clear line (a ConfigError)."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import psycopg
import redis
from django.conf import settings
from django.db import connections
from django.db.utils import OperationalError
from psycopg.conninfo import make_conninfo

from bosun.lib.config import Config, ConfigError


def check_production_stores(config: Config) -> None:
    """The separate roles share state through PostgreSQL and Redis; without them each process
    would quietly keep its own SQLite file and file queue, an island per host."""
    if config.database.engine != "postgres":
        raise ConfigError(
            "DATABASE_URL: the web, ws, worker and beat roles need PostgreSQL "
            "(postgres://USER:PASSWORD@HOST:5432/NAME); for one host run `serve embedded`"
        )
    if config.redis is None:
        raise ConfigError(
            "REDIS_URL: the web, ws, worker and beat roles need Redis (redis://HOST:6379/0); "
            "for one host run `serve embedded`"
        )


def check_static_collected() -> None:
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if not manifest.is_file():
        raise ConfigError(
            f"BOSUN_DATA_DIR: no static files collected in {settings.STATIC_ROOT}; "
            "run `python manage.py collectstatic --noinput` first"
        )


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"BOSUN_PORT: {host}:{port} is already in use; stop the other server "
                    "or choose another port with BOSUN_PORT"
                ) from None
            raise ConfigError(
                f"BOSUN_HOST: cannot listen on {host}:{port} ({exc.strerror})"
            ) from None


def check_database(config: Config) -> None:
    try:
        if config.database.engine == "postgres":
            _connect_postgres_directly(config)
        else:
            connections["default"].ensure_connection()
    except (OperationalError, psycopg.Error) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"DATABASE_URL: cannot connect to {config.database.describe()} ({reason})"
        ) from None


def _connect_postgres_directly(config: Config) -> None:
    """One plain connection, outside the pool: the pool retries quietly for its whole timeout
    and then reports only that it got no connection, not why."""
    database = config.database
    conninfo = make_conninfo(
        host=database.host,
        port=database.port or 5432,
        dbname=database.name,
        user=database.user or None,
        password=database.password or None,
        **{"connect_timeout": "5", **database.options},
    )
    psycopg.connect(conninfo).close()


def check_redis(config: Config) -> None:
    if config.redis is None:
        return
    client = redis.Redis.from_url(config.redis.url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConfigError(
            f"REDIS_URL: cannot reach {config.redis.describe()} ({exc}); "
            "start Redis or fix REDIS_URL"
        ) from None
    finally:
        client.close()
