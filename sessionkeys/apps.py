from django.apps import AppConfig


class SessionkeysConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "sessionkeys"
    verbose_name = "Session keys"
