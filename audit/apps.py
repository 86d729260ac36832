from django.apps import AppConfig

from audit.permissions import may_read_audit_trail
from bosun.lib.navigation import NavItem, register


class AuditConfig(AppConfig):
    """The tamper-evident audit trail: append-only, hash-chained events."""

    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Models (and so the signal receivers) can only be imported once the registry is ready.
        from audit import signals

        register(
            NavItem(
                section="Audit",
                label="Audit trail",
                url_name="audit:events",
                icon="journal-check",
                visible=may_read_audit_trail,
            )
        )
        signals.connect()
