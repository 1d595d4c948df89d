from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import AuditEvent, User
from accounts.services import record_event


class Command(BaseCommand):
    help = "Let a user who signed up with a passkey into the admin console."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--superuser", action="store_true", help="all permissions")
        parser.add_argument("--revoke", action="store_true", help="take staff rights away")

    def handle(self, *args: Any, username: str, superuser: bool, revoke: bool, **_: Any) -> None:
        user = User.objects.filter(username__iexact=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}: sign up on /signup first")
        user.is_staff = not revoke
        user.is_superuser = superuser and not revoke
        user.save(update_fields=["is_staff", "is_superuser"])
        record_event(
            kind=AuditEvent.Kind.STAFF_CHANGED,
            user=user,
            client=None,
            is_staff=user.is_staff,
            is_superuser=user.is_superuser,
        )
        self.stdout.write(f"{user.username}: staff={user.is_staff} superuser={user.is_superuser}")
