from django.apps import AppConfig


class SessionkeysConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "sessionkeys"
    verbose_name = "Session keys"

    def ready(self) -> None:
        from passkeys.messages import register_origin_check
        from sessionkeys import connections, services  # noqa: F401 - services: signal receivers

        # A message is signed for a dapp's origin only while that dapp is connected.
        register_origin_check("sessionkeys.connections", connections.check_message_origin)
