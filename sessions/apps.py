from django.apps import AppConfig


class SessionsConfig(AppConfig):
    """Session Manager: shell sessions on managed nodes and their recordings."""

    name = "sessions"
    # django.contrib.sessions owns the label `sessions`; this must never change once a
    # migration has been applied, since migrations and table names are keyed by it.
    label = "shell_sessions"
    verbose_name = "Session Manager"
    default_auto_field = "django.db.models.BigAutoField"
