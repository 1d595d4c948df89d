from django.apps import AppConfig


class ChainConfig(AppConfig):
    name = "chain"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chain.budgets import chain_health
        from portal.health import register_health_check

        register_health_check("chain", chain_health)
