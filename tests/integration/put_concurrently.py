"""Race parameter writes in a Bosun process of its own, one database connection per thread.

`python -m tests.integration.put_concurrently --writers 8 --writes 25` with the environment of
the Bosun instance to use (BOSUN_DATA_DIR, DATABASE_URL, …), migrated. Runs three races and
prints one JSON line describing what each left behind:

- `overwrites`: every writer overwrites one parameter (creating it if it is first);
- `creates_overwrite`: every writer creates one new name with overwrite=True;
- `creates`: every writer creates one new name without overwrite.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bosun.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402 - needs the configured Django above
from django.db import connection  # noqa: E402

from access.authorization import Principal  # noqa: E402
from parameters.exceptions import ParameterAlreadyExists  # noqa: E402
from parameters.models import Parameter, ParameterVersion  # noqa: E402
from parameters.services import parameter_put  # noqa: E402
from tests.support.races import race  # noqa: E402


def stored(name: str) -> dict[str, Any]:
    parameter = Parameter.objects.get(name=name)
    rows = ParameterVersion.objects.filter(parameter=parameter).order_by("version")
    return {
        "version": parameter.version,
        "kept": [[row.version, row.value] for row in rows],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, required=True)
    parser.add_argument("--writes", type=int, required=True)
    args = parser.parse_args()
    user, _ = get_user_model().objects.get_or_create(
        username="racer", defaults={"is_superuser": True}
    )
    connection.close()
    report: dict[str, Any] = {}

    def overwrite(number: int) -> list[Any]:
        principal = Principal(user=user, face="cli")
        written = []
        for write in range(args.writes):
            value = f"w{number}-{write}"
            result = parameter_put(
                principal=principal,
                name="/race/counter",
                value=value,
                parameter_type="String",
                overwrite=True,
            )
            written.append([result.version, value])
        return written

    written, errors = race(args.writers, overwrite)
    report["overwrites"] = {"written": written, "errors": errors, **stored("/race/counter")}

    def create_overwriting(number: int) -> list[Any]:
        result = parameter_put(
            principal=Principal(user=user, face="cli"),
            name="/race/created-overwriting",
            value=f"w{number}",
            parameter_type="String",
            overwrite=True,
        )
        return [[result.version, result.created]]

    written, errors = race(args.writers, create_overwriting)
    report["creates_overwrite"] = {
        "written": written,
        "errors": errors,
        **stored("/race/created-overwriting"),
    }

    def create(number: int) -> list[Any]:
        try:
            result = parameter_put(
                principal=Principal(user=user, face="cli"),
                name="/race/created-once",
                value=f"w{number}",
                parameter_type="String",
            )
        except ParameterAlreadyExists as refusal:
            return [["ParameterAlreadyExists", refusal.aws_code]]
        return [["created", result.version]]

    outcomes, errors = race(args.writers, create)
    report["creates"] = {"outcomes": outcomes, "errors": errors, **stored("/race/created-once")}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
