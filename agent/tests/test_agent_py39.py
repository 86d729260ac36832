"""The agent runs on Python 3.9 (older servers host it): hold every module to that."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

AGENT = Path(__file__).resolve().parents[1] / "bosun_agent"
PYTHON39 = os.environ.get("BOSUN_TEST_PYTHON39") or next(
    (
        path
        for path in ("/root/.pyenv/versions/3.9.18/bin/python3.9", "/usr/bin/python3.9")
        if Path(path).exists()
    ),
    shutil.which("python3.9") or "python3.9",
)

# Standard-library names newer than 3.9 that byte-compiling cannot catch.
NEWER_THAN_39 = [
    r"\bzip\([^)]*strict=",
    r"asyncio\.TaskGroup",
    r"asyncio\.timeout\(",
    r"datetime\.UTC\b",
    r"\bfrom typing import [^\n]*\b(TypeAlias|ParamSpec|Self|Never|override)\b",
    r"\bfreedesktop_os_release\(",
    r"\bmatch [^\n]*:\n\s+case ",
]


def test_every_agent_module_byte_compiles_on_python_3_9(tmp_path: Path) -> None:
    version = subprocess.run(
        [PYTHON39, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if version.stdout.strip() != "(3, 9)":
        pytest.skip(f"no Python 3.9 interpreter (tried {PYTHON39}; set BOSUN_TEST_PYTHON39)")
    modules = sorted(str(p) for p in AGENT.rglob("*.py"))
    script = (
        "import py_compile, sys\n"
        "for path in sys.argv[1:]:\n"
        "    py_compile.compile(path, cfile=path + '.39c', doraise=True)\n"
    )
    copies = []
    for module in modules:  # compile copies: never write .pyc files into the source tree
        copy = tmp_path / Path(module).name
        copy.write_text(Path(module).read_text())
        copies.append(str(copy))
    done = subprocess.run(
        [PYTHON39, "-c", script, *copies], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert len(copies) >= 10


def test_no_agent_module_uses_standard_library_names_newer_than_3_9() -> None:
    for module in AGENT.rglob("*.py"):
        text = module.read_text()
        for pattern in NEWER_THAN_39:
            assert not re.search(pattern, text), f"{module.name} uses {pattern}"
        if "->" in text:  # annotated: 3.9 must not evaluate `X | None` and friends
            assert "from __future__ import annotations" in text, module.name


def test_the_agent_never_imports_django_or_the_server() -> None:
    forbidden = re.compile(r"^\s*(from|import)\s+(django|bosun|web|access|audit|fleet)\b", re.M)
    for module in AGENT.rglob("*.py"):
        assert not forbidden.search(module.read_text()), module.name
