from django.apps import AppConfig


class ParametersConfig(AppConfig):
    name = "parameters"
    verbose_name = "Parameter Store"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The menu and the key service's re-encryption need the app registry, ready only now.
        from access import reencrypt
        from parameters import navigation
        from parameters.models import ParameterVersion
        from parameters.services import secure_context

        navigation.register_pages()
        reencrypt.register(
            ParameterVersion,
            "ciphertext",
            lambda row: secure_context(row.parameter.lookup, row.version),
        )
