"""The checklist an incident starts with, per alert kind (README, "Runbook")."""

COMMON_FIRST = "Confirm the change from a second network (another resolver, another machine)."
COMMON_LAST = (
    "Write down what happened, then resolve the incident; approve a new baseline only if the "
    "change is yours."
)

RUNBOOKS: dict[str, list[str]] = {
    "registrar_changed": [
        COMMON_FIRST,
        "Call the registrar of record; ask for the transfer to be reversed and the domain locked.",
        "Turn the lockdown on if it is not on already.",
        COMMON_LAST,
    ],
    "registration_status_changed": [
        COMMON_FIRST,
        "Ask the registrar why a lock was removed or a transfer/hold/redemption status was set.",
        "Restore the client/server transfer, update and delete prohibited locks.",
        "Turn the lockdown on while a transfer is pending.",
        COMMON_LAST,
    ],
    "nameservers_changed": [
        COMMON_FIRST,
        "Compare the delegation with the registrar's control panel; restore the nameservers.",
        "Turn the lockdown on: whoever runs these nameservers can get certificates for the domain.",
        "Check Certificate Transparency for certificates issued since the change.",
        COMMON_LAST,
    ],
    "dnssec_changed": [
        COMMON_FIRST,
        "Compare DS at the registry with the zone's DNSKEY; restore the key or the DS record.",
        COMMON_LAST,
    ],
    "caa_changed": [
        COMMON_FIRST,
        "Restore the CAA records that name the portal's certificate authorities only.",
        "Check Certificate Transparency for certificates from other authorities.",
        COMMON_LAST,
    ],
    "address_changed": [
        COMMON_FIRST,
        "Check that the new addresses are the portal's (load balancer, CDN).",
        "If not: restore the records at the DNS provider and rotate its credentials.",
        COMMON_LAST,
    ],
    "tls_key_changed": [
        COMMON_FIRST,
        "Check whether the certificate renewal was yours (deploy logs, ACME account).",
        "If not: turn the lockdown on, revoke the certificate, find who can serve the domain.",
        COMMON_LAST,
    ],
    "certificate_unknown": [
        COMMON_FIRST,
        "Look the certificate up in CT (issuer, names, date); ask the issuer about its order.",
        "If it is not yours: have it revoked, turn the lockdown on, check DNS and the registrar.",
        COMMON_LAST,
    ],
    "content_changed": [
        COMMON_FIRST,
        "Compare the served files with the release that was deployed.",
        "If the change was not shipped: turn the lockdown on, take the site down or redeploy.",
        COMMON_LAST,
    ],
    "related_origins_changed": [
        COMMON_FIRST,
        "An origin in /.well-known/webauthn can use every passkey: remove any you do not run.",
        "Turn the lockdown on until the file is back to what was approved.",
        COMMON_LAST,
    ],
    "origin_unexpected": [
        "List the accounts with a key for the unknown origin (console, migration plan).",
        "Turn the lockdown on: someone got a passkey for another origin onto portal accounts.",
        "Contact the people whose accounts are affected; help them remove the key.",
        COMMON_LAST,
    ],
    "key_burst": [
        "Check whether a migration or a campaign explains the additions.",
        "If not: turn the lockdown on and look for a phishing page.",
        COMMON_LAST,
    ],
    "hsts_missing": [
        COMMON_FIRST,
        "Restore the Strict-Transport-Security header (proxy or DJANGO_HSTS_SECONDS).",
        COMMON_LAST,
    ],
    "expiry_near": [
        "Renew the registration or the certificate now; check auto-renewal and payment details.",
        COMMON_LAST,
    ],
    "ttl_dropped": [
        COMMON_FIRST,
        "Ask who lowered the TTLs: it is how a DNS move is prepared.",
        COMMON_LAST,
    ],
    "check_stale": [
        "Check that the beat and worker processes run and that the check's service is reachable.",
        COMMON_LAST,
    ],
}


def checklist_for(kind: str) -> list[dict[str, object]]:
    steps = RUNBOOKS.get(kind, [COMMON_FIRST, COMMON_LAST])
    return [{"step": step, "done": False, "by": None, "at": None} for step in steps]
