"""Releasing threads together against the database, each with its own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def race(workers: int, work: Callable[[int], list[Any]]) -> tuple[list[Any], list[str]]:
    """Run work(n) in `workers` threads released together; their results and any errors."""
    start = threading.Barrier(workers)
    results: list[Any] = []
    errors: list[str] = []
    lock = threading.Lock()

    def run(number: int) -> None:
        try:
            start.wait()
            outcome = work(number)
            with lock:
                results.extend(outcome)
        except Exception as error:  # reported below; a thread's exception would vanish
            with lock:
                errors.append(f"{number}: {error!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors
