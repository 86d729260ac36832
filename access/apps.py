from django.apps import AppConfig


class AccessConfig(AppConfig):
    """Identity and access: policies in IAM's shape, the authorization engine, access keys."""

    name = "access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Signal wiring and the menu need the app registry, which is ready only now.
        from django.contrib.auth.signals import user_logged_in

        from access import navigation, reencrypt, services
        from access.api import schema  # noqa: F401 - registers the access-key scheme
        from access.middleware import remember_mfa_step
        from access.models import AccessKey

        user_logged_in.connect(remember_mfa_step, dispatch_uid="bosun-remember-mfa-step")
        navigation.register_pages()
        reencrypt.register(AccessKey, "secret_ciphertext", services.secret_context)
