from django.http import HttpRequest

from recovery.selectors import invitations_for, requests_for_guardian, requests_for_owner


def recovery_notices(request: HttpRequest) -> dict[str, object]:
    """What every page shows a signed-in person: a recovery of their own account (with a cancel
    button), recoveries waiting for them as a guardian, and invitations to guard an account."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "recovery_owner_requests": requests_for_owner(user=user),
        "recovery_guardian_requests": requests_for_guardian(user=user),
        "recovery_invitations": invitations_for(user=user),
    }
