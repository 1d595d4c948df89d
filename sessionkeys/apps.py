from django.apps import AppConfig


class SessionkeysConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "sessionkeys"
    verbose_name = "Session keys"

    def ready(self) -> None:
        from sessionkeys import services  # noqa: F401 - connects its signal receivers
