"""Celery tasks of the recovery app (thin)."""

from celery import shared_task

from recovery.services import run_deadlines


@shared_task(acks_late=True)
def recovery_deadlines() -> dict[str, int]:
    """Beat: finalize recoveries whose 24-hour delay is over, expire the late ones."""
    run = run_deadlines()
    return {"finalizing": run.finalizing, "expired": run.expired}
