from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The tamper-evident audit trail: append-only, hash-chained events."""

    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"
