from django.apps import AppConfig


class ChainConfig(AppConfig):
    name = "chain"
    default_auto_field = "django.db.models.BigAutoField"
