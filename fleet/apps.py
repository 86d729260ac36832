from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "fleet"
    verbose_name = "Fleet Manager"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The menu needs the app registry, which is ready only now.
        from fleet import navigation

        navigation.register_pages()
