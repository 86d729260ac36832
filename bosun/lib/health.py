"""Checks of the stores every Bosun process depends on, for /healthz and the dashboard."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connections


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: float
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _timed(probe: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = probe()
    except Exception as exc:
        # The class and first line only: enough to act on, without leaking connection strings.
        message = str(exc).splitlines()[0] if str(exc) else ""
        return CheckResult(False, _ms_since(started), f"{type(exc).__name__}: {message}"[:200])
    return CheckResult(True, _ms_since(started), detail)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def check_database() -> CheckResult:
    def probe() -> str:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return connections["default"].vendor

    return _timed(probe)


def check_channel_layer(timeout: float = 2.0) -> CheckResult:
    """A message sent to a fresh channel must come back: proves the layer both ways."""

    async def round_trip() -> str:
        layer = get_channel_layer()
        if layer is None:
            raise RuntimeError("no channel layer configured")
        channel = await layer.new_channel("healthz.")
        await layer.send(channel, {"type": "healthz.ping"})
        await asyncio.wait_for(layer.receive(channel), timeout)
        return type(layer).__name__

    return _timed(async_to_sync(round_trip))


def check_broker(celery_app: Any, timeout: float = 2.0) -> CheckResult:
    def probe() -> str:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
            return connection.transport_cls if isinstance(connection.transport_cls, str) else "ok"

    return _timed(probe)


def check_all(celery_app: Any) -> dict[str, CheckResult]:
    """Every store a Bosun process depends on, by name."""
    return {
        "database": check_database(),
        "channel_layer": check_channel_layer(),
        "broker": check_broker(celery_app),
    }
