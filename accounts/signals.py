"""A sign-in that goes takes its token or session with it, however it goes: ended by its owner,
by the deletion of the passkey that holds it (a cascade), or by the deletion of its user."""

from importlib import import_module
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete
from django.dispatch import receiver
from knox.models import AuthToken

from accounts.models import SignIn


@receiver(post_delete, sender=SignIn)
def end_what_the_signin_held(sender: Any, instance: SignIn, **kwargs: Any) -> None:
    if instance.token_id is not None:
        AuthToken.objects.filter(pk=instance.token_id).delete()
    if instance.session_key:
        import_module(settings.SESSION_ENGINE).SessionStore(
            session_key=instance.session_key
        ).delete()
