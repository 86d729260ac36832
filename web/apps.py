from django.apps import AppConfig

from bosun.lib.navigation import NavItem, register


class WebConfig(AppConfig):
    """The dashboard shell: layout, sign-in, home page, health and the live event feed."""

    name = "web"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        register(
            NavItem(section="", label="Dashboard", url_name="home", icon="speedometer2", order=0)
        )
        # Django's documented place for signal wiring: models can only be imported once the
        # app registry is ready, which is after this module loads.
        from web import auth

        auth.connect_signals()
