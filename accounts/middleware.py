from collections.abc import Callable
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.services import SESSION_SEEN_AT, SESSION_SIGNIN_ID, touch_signin


class SignInActivityMiddleware:
    """Keep the last_seen_at (and address) of a browser's sign-in current, at most once a
    minute; requests without a session cookie cost nothing."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and session.session_key:
            signin_id = session.get(SESSION_SIGNIN_ID)
            if signin_id is not None:
                stamp = session.get(SESSION_SEEN_AT)
                seen_at = datetime.fromisoformat(stamp) if stamp else None
                if touch_signin(request=request, signin_id=int(signin_id), seen_at=seen_at):
                    session[SESSION_SEEN_AT] = timezone.now().isoformat()
        return self.get_response(request)
