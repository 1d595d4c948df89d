from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from portal.authentication import PortalSessionAuthentication


class CsrfProtected(BasePermission):
    """Enforce Django's CSRF check on a JSON endpoint that the portal's own pages call.

    DRF exempts its views from CSRF and only checks it for session-authenticated requests; the
    page endpoints that *start* a session need it too. The check never reads the body.
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        PortalSessionAuthentication().enforce_csrf(request)
        return True
