"""Two texts compared line by line, for pages that show what changed between versions."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from django.views.decorators.debug import sensitive_variables


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "header", "hunk", "added", "removed", "same"
    text: str


# The texts may be secrets (a parameter's values): an error report must not show them.
@sensitive_variables()
def diff_lines(old: str, new: str, *, old_name: str, new_name: str) -> list[DiffLine]:
    """A unified diff, line by line (the template escapes every line)."""
    lines = []
    for line in difflib.unified_diff(
        old.splitlines(), new.splitlines(), old_name, new_name, lineterm=""
    ):
        if line.startswith(("---", "+++")):
            kind = "header"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "added"
        elif line.startswith("-"):
            kind = "removed"
        else:
            kind = "same"
        lines.append(DiffLine(kind, line))
    return lines
