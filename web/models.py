from django.conf import settings
from django.db import models


class SystemCheck(models.Model):
    """One run of the health checks by a Celery worker, asked for from the dashboard.

    It proves the whole path a later feature relies on: a request writes a row, a worker picks
    the task from the broker, and the result reaches the browser over the channel layer.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    worker = models.CharField(max_length=255, blank=True)
    results = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["requested_by", "-requested_at"])]

    def __str__(self) -> str:
        return f"system check {self.pk} ({self.status})"

    @property
    def queue_wait_ms(self) -> float | None:
        """From the request to a worker starting on it: the broker's part of the trip."""
        return _ms_between(self.requested_at, self.started_at)

    @property
    def round_trip_ms(self) -> float | None:
        """From the request to the recorded result, checks included."""
        return _ms_between(self.requested_at, self.completed_at)


def _ms_between(start, end) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 1)


class WorkerHeartbeat(models.Model):
    """The last time beat's periodic task ran on each worker host."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
