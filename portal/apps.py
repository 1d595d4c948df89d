import sys

from django.apps import AppConfig
from django.conf import settings


class PortalConfig(AppConfig):
    name = "portal"

    def ready(self) -> None:
        # py_ecc (imported by eth_account, which the chain code uses) raises the interpreter's
        # recursion limit to 100,000 when it is first imported: far above what the C stack holds,
        # so runaway recursion would crash the process instead of raising RecursionError. Import
        # it now, once, and put a sane limit back for the rest of the process.
        import eth_account  # noqa: F401

        sys.setrecursionlimit(int(settings.PORTAL_RECURSION_LIMIT))
