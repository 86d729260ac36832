from django.apps import AppConfig


class SessionsConfig(AppConfig):
    """Session Manager: shell sessions on managed nodes and their recordings."""

    name = "sessions"
    # django.contrib.sessions owns the label `sessions`; this must never change once a
    # migration has been applied, since migrations and table names are keyed by it.
    label = "shell_sessions"
    verbose_name = "Session Manager"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from fleet.protocol.messages import register_reply_handler
        from sessions import navigation
        from sessions.services.sessions import sessions_replied
        from sessions.wire import MESSAGE_START_SESSION

        # Imported here: an AppConfig module is imported before the models are ready.
        register_reply_handler(MESSAGE_START_SESSION, sessions_replied)
        navigation.register_pages()
