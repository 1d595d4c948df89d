"""While the lockdown is on, the sponsor pays for no call that changes who controls an account:
such an operation is neither created nor signed (423 `lockdown`); other calls go on."""

from typing import Any

import pytest

from chain import userops
from chain.models import ChainOperation
from chain.ownership import changes_ownership
from domains.services import set_lockdown
from passkeys.approvals import request_approval
from portal.errors import PortalError
from tests.chain.conftest import PipelineKit
from tests.chain.test_pipeline_flow import sign_through_api

ACCOUNT = "0x1111111111111111111111111111111111111111"
VALIDATOR = "0x2222222222222222222222222222222222222222"
ELSEWHERE = "0x000000000000000000000000000000000000dEaD"
ADDRESSES = {"WebAuthnValidator": VALIDATOR}


@pytest.mark.parametrize(
    ("call_data", "changes"),
    [
        (userops.execute_call_data(target=ELSEWHERE, value=1), False),
        (userops.execute_call_data(target=VALIDATOR, data=b"\x01\x02\x03\x04"), True),
        (userops.execute_call_data(target=ACCOUNT, data=b"\x9d\xbf\x83\x36"), True),
        (
            userops.execute_batch_call_data(
                calls=[userops.Call(target=ELSEWHERE), userops.Call(target=VALIDATOR)]
            ),
            True,
        ),
        (userops.execute_batch_call_data(calls=[userops.Call(target=ELSEWHERE)]), False),
        (b"\xff" + userops.execute_call_data(target=ELSEWHERE)[1:], True),  # not execute()
        (userops.EXECUTE_SELECTOR + b"\xff" + b"\x00" * 31, True),  # delegatecall mode
        (userops.EXECUTE_SELECTOR + b"\x01\x02", True),  # undecodable
    ],
)
def test_which_calls_change_ownership(call_data: bytes, changes: bool) -> None:
    assert changes_ownership(call_data=call_data, account=ACCOUNT, addresses=ADDRESSES) is changes


def ask(kit: PipelineKit, user: Any, account: Any, call_data: bytes, key: str) -> ChainOperation:
    return request_approval(
        user=user,
        account=account,
        kind="test",
        label="A test operation",
        call_data=call_data,
        idempotency_key=key,
        details={},
    )


def test_no_ownership_change_is_sponsored_during_a_lockdown(pipeline_kit: PipelineKit) -> None:
    user, _passkey, account = pipeline_kit.deployed_account("lena")
    second = pipeline_kit.passkey(user)
    before = ask(pipeline_kit, user, account, pipeline_kit.add_key_call(second), "before")
    set_lockdown(enabled=True, reason="registrar changed", actor=None, client=None)

    with pytest.raises(PortalError) as refused:
        ask(pipeline_kit, user, account, pipeline_kit.add_key_call(second), "during")
    assert (refused.value.code, refused.value.status_code) == ("lockdown", 423)
    assert not ChainOperation.objects.filter(idempotency_key="during").exists()
    # One asked for before the lockdown is not signed (so not sent) while it lasts.
    response = sign_through_api(pipeline_kit, user, before)
    assert response.status_code == 423 and response.json()["code"] == "lockdown"
    before.refresh_from_db()
    assert before.status == ChainOperation.Status.AWAITING_SIGNATURE
    # Calls that change no ownership are still sponsored.
    assert ask(pipeline_kit, user, account, pipeline_kit.noop_call(), "noop").user_op_hash

    set_lockdown(enabled=False, reason="resolved", actor=None, client=None)
    assert ask(pipeline_kit, user, account, pipeline_kit.add_key_call(second), "after")
