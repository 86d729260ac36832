from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Delivers the events other apps emit to HTTP endpoints, signed, retried, durably."""

    name = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The menu and the re-encryption registry need the app registry, ready only now.
        from access import reencrypt
        from webhooks import navigation
        from webhooks.models import WebhookEndpoint
        from webhooks.sealing import secret_context

        navigation.register_pages()
        # A key rotation re-seals the signing secrets too.
        reencrypt.register(WebhookEndpoint, "secret_ciphertext", secret_context)
