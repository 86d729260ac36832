from django.apps import AppConfig

from bosun.lib.navigation import NavItem, register


class AuditConfig(AppConfig):
    """The tamper-evident audit trail: append-only, hash-chained events."""

    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Models (so the signal receivers and the policy check) can be imported only once the
        # registry is ready.
        from audit import signals
        from audit.permissions import may_read_audit_trail

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
