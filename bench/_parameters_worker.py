"""The Parameter Store benchmark's worker, run in a Bosun process of its own (bench/parameters.py).

`seed --start I --stop J`: create parameters I..J-1 of the benchmark's hierarchy through
`parameters.services.parameter_put`, as the admin: every value a real ciphertext of the key
service (for SecureStrings), every write authorized, audited and versioned as a client's would be.

`rotate-master`: `access.kms.master_key_rotate()` (a new master key, every data key re-wrapped).

`rotate-data-key`: `access.kms.key_rotate(key=default key)`, then
`access.reencrypt.reencrypt_key(key=…)` re-seals every stored value under the new generation.

Each prints one JSON line with its timings (Django's start-up excluded; the caller times the
whole process too).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bosun.settings")
django.setup()

# Django must be configured before these imports.
from django.contrib.auth import get_user_model  # noqa: E402

from access import kms, reencrypt  # noqa: E402
from access.authorization import Principal  # noqa: E402
from access.models import DataKey  # noqa: E402
from parameters import services  # noqa: E402

APPS, ENVS, KEYS = 100, 10, 10  # /app{0..99}/env{0..9}/key{0..9}: 10,000 parameters
SECURE_KEY = 9  # every env's key9 is a SecureString: 1,000 of them


def name_of(index: int) -> tuple[str, bool]:
    """The index-th parameter's name, and whether it is a SecureString."""
    app, rest = divmod(index, ENVS * KEYS)
    env, key = divmod(rest, KEYS)
    return f"/app{app}/env{env}/key{key}", key == SECURE_KEY


def seed(start: int, stop: int) -> dict:
    admin = get_user_model().objects.get(username="admin")
    principal = Principal(user=admin, face="cli", user_agent="bosun-bench")
    kms.default_key()  # created once, before the clock starts
    latencies = []
    began = time.perf_counter()
    for index in range(start, stop):
        name, secure = name_of(index)
        before = time.perf_counter()
        services.parameter_put(
            principal=principal,
            name=name,
            value=f"{'secret' if secure else 'value'}-{index}-{secrets.token_hex(8)}",
            parameter_type="SecureString" if secure else "String",
        )
        latencies.append(time.perf_counter() - before)
    latencies.sort()
    return {
        "created": stop - start,
        "seconds": round(time.perf_counter() - began, 3),
        "put_ms_p50": round(latencies[len(latencies) // 2] * 1000, 3) if latencies else None,
    }


def rotate_master() -> dict:
    began = time.perf_counter()
    new_id = kms.master_key_rotate()
    return {
        "seconds": round(time.perf_counter() - began, 3),
        "master_key_id": new_id,
        "data_keys": DataKey.objects.count(),
    }


def rotate_data_key() -> dict:
    key = kms.default_key()
    began = time.perf_counter()
    data_key = kms.key_rotate(key=key)
    rotated = time.perf_counter()
    resealed = reencrypt.reencrypt_key(key=key)
    ended = time.perf_counter()
    return {
        "key_rotate_seconds": round(rotated - began, 3),
        "reencrypt_seconds": round(ended - rotated, 3),
        "seconds": round(ended - began, 3),
        "generation": data_key.generation,
        "values_resealed": resealed,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._parameters_worker")
    commands = parser.add_subparsers(dest="command", required=True)
    seeding = commands.add_parser("seed")
    seeding.add_argument("--start", type=int, required=True)
    seeding.add_argument("--stop", type=int, required=True)
    commands.add_parser("rotate-master")
    commands.add_parser("rotate-data-key")
    args = parser.parse_args(argv)
    if args.command == "seed":
        result = seed(args.start, args.stop)
    elif args.command == "rotate-master":
        result = rotate_master()
    else:
        result = rotate_data_key()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
