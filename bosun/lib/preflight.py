"""Start-up checks that turn a wrong setting into one clear line (a ConfigError)."""

from __future__ import annotations

import errno
import socket

import redis
from django.db import connections
from django.db.utils import OperationalError

from bosun.lib.config import Config, ConfigError


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
        connections["default"].ensure_connection()
    except OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"DATABASE_URL: cannot connect to {config.database.describe()} ({reason})"
        ) from None


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
