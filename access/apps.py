from django.apps import AppConfig


class AccessConfig(AppConfig):
    """Identity and access: policies in IAM's shape, the authorization engine, access keys."""

    name = "access"
    default_auto_field = "django.db.models.BigAutoField"
