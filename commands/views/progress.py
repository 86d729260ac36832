"""A command's progress as pages show it, counted from its invocations (the record).

The command row's own counts are refreshed only when it settles and by the sweep every few
seconds, so pages that follow a running command count its invocations themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.db.models import Count

from commands import statuses
from commands.models import Command, Invocation

# Fine statuses by the colour of their part of the progress bar, in the bar's order.
GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("succeeded", "bg-success", (statuses.SUCCESS,)),
    ("failed", "bg-danger", (statuses.FAILED, statuses.EXECUTION_TIMED_OUT)),
    ("not delivered", "bg-warning", (statuses.DELIVERY_TIMED_OUT, statuses.UNDELIVERABLE)),
    ("cancelled", "bg-dark", (statuses.CANCELLED, statuses.TERMINATED)),
    (
        "running",
        "bg-primary progress-bar-striped progress-bar-animated",
        (statuses.IN_PROGRESS, statuses.CANCELLING),
    ),
)
OPEN = (statuses.PENDING, statuses.DELAYED, statuses.IN_PROGRESS, statuses.CANCELLING)
ERRORS = (statuses.FAILED, statuses.EXECUTION_TIMED_OUT)


@dataclass(frozen=True)
class Segment:
    label: str
    css: str
    count: int
    percent: float


@dataclass
class Progress:
    counts: dict[str, int] = field(default_factory=dict)  # fine status → invocations

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def completed(self) -> int:
        return sum(n for status, n in self.counts.items() if status not in OPEN)

    @property
    def errors(self) -> int:
        return sum(self.counts.get(status, 0) for status in ERRORS)

    @property
    def delivery_timed_out(self) -> int:
        return self.counts.get(statuses.DELIVERY_TIMED_OUT, 0)

    @property
    def percent_done(self) -> int:
        return round(100 * self.completed / self.total) if self.total else 0

    @property
    def segments(self) -> list[Segment]:
        total = self.total or 1
        parts = []
        for label, css, members in GROUPS:
            count = sum(self.counts.get(status, 0) for status in members)
            if count:
                parts.append(Segment(label, css, count, round(100 * count / total, 2)))
        return parts

    @property
    def rows(self) -> list[tuple[str, int]]:
        """(fine status, count), in a stable order: the bar's, then the waiting ones."""
        order = [s for _, _, members in GROUPS for s in members] + [
            statuses.PENDING,
            statuses.DELAYED,
        ]
        known = [(status, self.counts[status]) for status in order if self.counts.get(status)]
        rest = sorted((s, n) for s, n in self.counts.items() if s not in order and n)
        return known + rest


def progress_of(counts: Mapping[str, int]) -> Progress:
    return Progress(counts=dict(counts))


def live_progress(commands: Iterable[Command]) -> dict[int, Progress]:
    """{command pk: progress} of the commands still running, in one query."""
    open_pks = [command.pk for command in commands if not command.is_terminal]
    if not open_pks:
        return {}
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    rows = (
        Invocation.objects.filter(command_id__in=open_pks)
        .order_by()
        .values_list("command_id", "status_details")
        .annotate(n=Count("pk"))
    )
    for command_pk, status, n in rows:
        counts[command_pk][status] = n
    return {pk: progress_of(counts.get(pk, {})) for pk in open_pks}
