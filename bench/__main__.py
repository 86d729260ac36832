"""Run every benchmark in bench/, or the one named: `python -m bench [NAME]`."""

from __future__ import annotations

import datetime
import importlib
import json
import os
import pkgutil
import platform
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
RESULTS = PACKAGE / "results"


def available() -> list[str]:
    """Benchmark names: the package's modules, less helpers (`_name`) and this entry point."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(PACKAGE)])
        if not info.name.startswith("_") and not info.ispkg
    )


def machine() -> dict:
    """The facts needed to compare two result files: figures from different boxes don't mix."""
    return {
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        # Figures measured on uncommitted code can't be traced back to a commit.
        "git_dirty": bool(_git("status", "--porcelain")),
    }


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def run_one(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    facts = machine()
    result = module.run()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {"benchmark": name, "machine": facts, **result}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"{name}: {module.summary(result)}  ({path.relative_to(ROOT)})", flush=True)


def main(argv: list[str]) -> int:
    names = available()
    wanted = [name for name in argv if name]  # `make bench` passes an empty NAME
    unknown = [name for name in wanted if name not in names]
    if unknown:
        print(
            f"bench: no benchmark named {', '.join(unknown)}; available: {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    for name in wanted or names:
        run_one(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
