from django.apps import AppConfig


class PasskeysConfig(AppConfig):
    name = "passkeys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from passkeys import onchain  # noqa: F401 - connects its signal receivers
