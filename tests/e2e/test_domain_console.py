"""An operator watches the domain in /console/ in Chromium: posture tiles, a check's history, the
certificates, an incident, the lockdown switch (asking for a passkey first), the migration chart.
Screenshots go to $E2E_SCREENSHOT_DIR as domains-*.png."""

from collections.abc import Callable
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from accounts.models import AuditEvent, User
from domains.models import Incident, Lockdown, WatchedDomain
from tests.domains.conftest import baselined, operator, watch, world  # noqa: F401
from tests.domains.test_alerts_onchain import key_event
from tests.domains.world import DOMAIN, World

from .browser import WAIT_SECONDS, Page, VirtualAuthenticator

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def screenshot(page: Page, name: str) -> None:
    """The whole page, not only the window."""
    driver = page.driver
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], min(max(height + 120, size["height"]), 4000))
    try:
        page.screenshot(name)
    finally:
        driver.set_window_size(size["width"], size["height"])


def test_an_operator_sees_the_change_and_locks_the_portal_down(
    page: Page,
    virtual_authenticator: VirtualAuthenticator,
    browser_sign_up: Callable[..., None],
    world: World,  # noqa: F811
    baselined: WatchedDomain,  # noqa: F811
    watch: Any,  # noqa: F811
    settings: Any,
) -> None:
    # Someone moves the domain's CAA to their CA and gets a certificate logged.
    world.zone.records["CAA"] = (3600, ['0 issue "rogue.test"'])
    world.zone.records["A"] = (300, ["127.0.0.1"])
    rogue = world.rogue_ca.issue_cert(DOMAIN)
    world.ct.append(world.issuance("1001", rogue, issuer="Rogue Test CA"))
    watch(["dns", "ct"])
    origin = settings.PORTAL_ORIGINS[0]
    for n in range(3):
        key_event(
            settings,
            name="PasskeyCreated",
            account=f"0x{n:040x}",
            origin=origin,
            credential=f"0x0{n}",
        )
    key_event(
        settings,
        name="PasskeyCreated",
        account=f"0x{2:040x}",
        origin="https://new.example.test",
        credential="0x09",
    )

    browser_sign_up("opal")
    User.objects.filter(username="opal").update(is_staff=True)

    page.open("/console/")
    tile = page.driver.find_element(By.CSS_SELECTOR, '.tile[data-signal="dns"]')
    assert tile.get_attribute("data-state") == "critical"
    assert "caa_changed" in page.text("#open-alerts")
    screenshot(page, "domains-console")

    # The lockdown needs a fresh passkey confirmation: the page asks for it and carries on.
    page.expire_reauthentication()
    page.fill("lockdown-reason", "CAA changed to a CA we do not use")
    page.press("lockdown-button")
    WebDriverWait(page.driver, WAIT_SECONDS).until(
        lambda d: d.find_element(By.ID, "lockdown-state").text == "ON"
    )
    assert "locked down" in page.text("#lockdown-banner")
    assert Lockdown.objects.get().enabled
    assert AuditEvent.objects.filter(kind="reauthenticated", user__username="opal").exists()
    screenshot(page, "domains-lockdown")

    page.open(f"/console/domains/{DOMAIN}")
    assert "Rogue Test CA" in page.text("#ct-certificates")
    assert "days" in page.text("#expiry-countdown")
    screenshot(page, "domains-domain")

    page.open(f"/console/domains/{DOMAIN}/dns")
    assert "records.CAA" in page.text("#history")
    screenshot(page, "domains-check-history")

    incident = Incident.objects.get()
    page.open(f"/console/incidents/{incident.pk}")
    page.press("move-acknowledged")
    page.wait_for_path(f"/console/incidents/{incident.pk}")
    assert page.text("#incident-status") == "acknowledged"
    page.press("step-0")
    page.wait_for_path(f"/console/incidents/{incident.pk}")
    screenshot(page, "domains-incident")

    page.open("/console/migration?to=https://new.example.test")
    WebDriverWait(page.driver, WAIT_SECONDS).until(
        lambda d: d.find_element(By.ID, "migration-chart").get_attribute("data-rendered") == "3"
    )
    assert '"https://new.example.test"' in page.text("#related-origins-file")
    screenshot(page, "domains-migration")

    # And the people's pages say it too.
    page.open("/account")
    assert "locked down" in page.text("#lockdown-banner")
