from django.apps import AppConfig


class DomainsConfig(AppConfig):
    name = "domains"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from domains.lockdown import LockdownGuard
        from portal.guards import register_guard

        register_guard("lockdown", LockdownGuard())
