"""CPU time and memory of a set of process trees, read from /proc (Linux only).

A role started by `manage.py serve ROLE` execs its server (gunicorn, daphne, celery), which may
fork workers; a tree is the root and every descendant, found through /proc/*/stat's parent id.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float  # user + system, summed over the trees' live processes
    rss_bytes: int  # resident set, summed (shared pages count once per process)
    pss_bytes: int  # proportional set: shared pages split between their sharers
    processes: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its closing one.
    return text[text.rindex(")") + 2 :].split()


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is None:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def tree_pids(roots: list[int]) -> list[int]:
    children = _children_by_parent()
    seen: list[int] = []
    pending = list(roots)
    while pending:
        pid = pending.pop()
        if pid in seen or not Path(f"/proc/{pid}").exists():
            continue
        seen.append(pid)
        pending.extend(children.get(pid, []))
    return seen


def _pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def usage(roots: list[int]) -> Usage:
    cpu = 0.0
    rss = pss = count = 0
    for pid in tree_pids(roots):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        # Fields after the name: utime is the 12th, stime the 13th, rss (pages) the 22nd.
        cpu += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        rss += int(fields[21]) * PAGE_SIZE
        pss += _pss_bytes(pid)
        count += 1
    return Usage(cpu_seconds=cpu, rss_bytes=rss, pss_bytes=pss, processes=count)


def machine_busy_seconds() -> float:
    """Busy time of every CPU since boot (/proc/stat: all but idle and iowait): what the
    whole machine did, other people's work included."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS
