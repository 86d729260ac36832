"""The command line of each Bosun process role, shared by `serve ROLE` and the embedded stack."""

from __future__ import annotations

import sys

from bosun.lib.config import Config

PYTHON = sys.executable


def web_argv(config: Config) -> list[str]:
    """HTTP under gunicorn: plain Django HTTP runs several times faster under WSGI than ASGI."""
    return [
        PYTHON, "-m", "gunicorn", "bosun.wsgi:application",
        "--bind", _bind(config),
        "--workers", str(config.web_workers),
        "--worker-class", "sync",
        "--graceful-timeout", "5",
        "--forwarded-allow-ips", "*" if config.secure_proxy else "127.0.0.1,::1",
        "--log-level", config.log_level.lower(),
        "--no-control-socket",
    ]  # fmt: skip


def ws_argv(config: Config) -> list[str]:
    """Daphne: browser and agent websockets (and HTTP as well in the embedded stack)."""
    argv = [
        PYTHON, "-m", "daphne", "bosun.asgi:application",
        "--bind", config.host, "--port", str(config.port),
        "--application-close-timeout", "5",
        "-v", "1",
    ]  # fmt: skip
    if config.secure_proxy:
        argv.append("--proxy-headers")
    return argv


def worker_argv(config: Config, *, with_beat: bool = False) -> list[str]:
    argv = [PYTHON, "-m", "celery", "-A", "bosun", "worker", "--loglevel", config.log_level]
    if config.embedded:
        # Threads keep the embedded stack small; the file broker has no fan-out for gossip.
        argv += ["--pool", "threads", "--concurrency", "4", "--without-gossip", "--without-mingle"]
    if with_beat:
        argv += ["--beat", "--schedule", str(config.data_dir / "celerybeat-schedule")]
    return argv


def beat_argv(config: Config) -> list[str]:
    return [
        PYTHON, "-m", "celery", "-A", "bosun", "beat", "--loglevel", config.log_level,
        "--schedule", str(config.data_dir / "celerybeat-schedule"),
    ]  # fmt: skip


def _bind(config: Config) -> str:
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"{host}:{config.port}"
