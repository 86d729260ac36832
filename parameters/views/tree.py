"""The hierarchy as folders: which levels lie below a path, and how many parameters each holds,
counting only the parameters the principal may describe."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count

from access.authorization import Principal
from parameters.models import Parameter
from parameters.selectors import DESCRIBE


@dataclass
class Folder:
    name: str
    path: str
    count: int
    has_children: bool = False
    children: list[Folder] | None = None  # None: not loaded (collapsed)
    current: bool = False
    open: bool = False


@dataclass
class Tree:
    counts: dict[str, int] = field(default_factory=dict)  # parent path → parameters in it

    def children(self, path: str) -> list[Folder]:
        """The folders one level below `path`, each with the parameters anywhere below it."""
        prefix = "" if path == "/" else path
        below: Counter[str] = Counter()
        deeper: set[str] = set()
        for parent, count in self.counts.items():
            if parent != path and parent.startswith(prefix + "/"):
                segment, _, rest = parent[len(prefix) + 1 :].partition("/")
                below[segment] += count
                if rest:
                    deeper.add(segment)
        return [
            Folder(name=name, path=f"{prefix}/{name}", count=count, has_children=name in deeper)
            for name, count in sorted(below.items())
        ]

    def expanded_to(self, path: str) -> list[Folder]:
        """The top-level folders, opened along the way to `path` (its own children shown)."""
        top = self.children("/")
        level = top
        for folder_path in ancestors(path):
            match = next((folder for folder in level if folder.path == folder_path), None)
            if match is None:
                break
            match.open = True
            match.children = self.children(match.path)
            match.current = match.path == path
            level = match.children
        return top


def ancestors(path: str) -> list[str]:
    """`/a/b/c` → [`/a`, `/a/b`, `/a/b/c`]."""
    if path == "/":
        return []
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[: index + 1]) for index in range(len(parts))]


def folder_tree(principal: Principal) -> Tree:
    """One grouped query over the parameters the principal may describe."""
    visible = Parameter.objects.visible_to(principal, DESCRIBE)
    rows = visible.order_by().values("parent_path").annotate(count=Count("pk"))
    return Tree(counts={row["parent_path"]: row["count"] for row in rows})
