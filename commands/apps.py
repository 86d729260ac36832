from django.apps import AppConfig


class CommandsConfig(AppConfig):
    name = "commands"
    verbose_name = "Documents and Run Command"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Reply and ack hooks, the menu and the built-in documents need the app registry.
        from django.db.models.signals import post_migrate

        from commands import navigation
        from commands.documents.builtin import builtin_documents_sync
        from commands.services import results

        results.register()
        navigation.register_pages()
        post_migrate.connect(builtin_documents_sync, sender=self)
