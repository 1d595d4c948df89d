"""The admin shows recoveries with their countdown and guardians, and lets nobody change them:
no operator can skip or shorten the delay."""

import pytest
from django.test import Client

from recovery.models import Guardian, RecoveryRequest
from tests.recovery.conftest import Person, Recovery, make_guardian

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]


def test_recoveries_and_guardians_are_read_only(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    make_guardian(alice, bob)
    assert Recovery().start("alice").status_code == 201
    request = RecoveryRequest.objects.get()
    guardian = Guardian.objects.get()
    operator = people["carol"].user
    operator.is_staff = operator.is_superuser = True
    operator.save()
    client = Client()
    client.force_login(operator)

    listing = client.get("/admin/recovery/recoveryrequest/")
    assert listing.status_code == 200
    assert "expires unless approved in" in listing.content.decode()
    detail = client.get(f"/admin/recovery/recoveryrequest/{request.pk}/change/")
    assert detail.status_code == 200
    assert request.code_hash not in detail.content.decode()
    for url in (
        f"/admin/recovery/recoveryrequest/{request.pk}/change/",
        f"/admin/recovery/guardian/{guardian.pk}/change/",
    ):
        assert client.post(url, {"status": "finalized"}).status_code == 403
    assert (
        client.post(
            f"/admin/recovery/recoveryrequest/{request.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    assert client.get("/admin/recovery/guardian/add/").status_code == 403
    request.refresh_from_db()
    assert request.status == RecoveryRequest.Status.PENDING_APPROVAL
