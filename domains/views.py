"""The operators' console at /console/ (staff only): server-rendered pages; the sensitive switches
(lockdown, baseline approval, pre-approved changes) post JSON from the page's script so that the
page can ask for a passkey confirmation (sudo mode) right there."""

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import ReauthenticatedRecently, current_user
from domains import rules, selectors, services
from domains.models import Incident, Signal, WatchedDomain
from portal.client_info import ClientInfo
from portal.errors import PortalError

View = Callable[..., HttpResponse]


def staff_required(view: View) -> View:
    """Signed in (with a passkey, like everyone) and staff; others are refused."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("login"))
        if not request.user.is_staff:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def _domain_or_404(name: str) -> WatchedDomain:
    domain = selectors.domain_named(name)
    if domain is None:
        raise Http404
    return domain


def _flash(request: HttpRequest, text: str, kind: str = "success") -> None:
    request.session["console_flash"] = {"text": text, "kind": kind}


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    flash = request.session.pop("console_flash", None)
    return {"flash": flash, "lockdown": selectors.lockdown_state(), **extra}


@staff_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    domains = []
    for domain in selectors.watched_domains():
        domains.append({"domain": domain, "signals": selectors.domain_detail(domain)})
    return render(
        request,
        "domains/overview.html",
        _context(
            request,
            domains=domains,
            signals=[Signal(s) for s in selectors.enabled_signals()],
            open_alerts=selectors.alerts(status="open")[:100],
            incidents=selectors.open_incidents()[:50],
        ),
    )


@staff_required
@require_POST
def add_domain(request: HttpRequest) -> HttpResponse:
    try:
        domain = services.add_domain(
            name=request.POST.get("name", ""),
            actor=current_user(request),
            client=ClientInfo.from_request(request),
        )
    except PortalError as exc:
        _flash(request, exc.detail, "error")
        return redirect("console")
    _flash(request, f"Watching {domain.name}: its checks run on the next round.")
    return redirect("console")


@staff_required
@require_GET
def domain_page(request: HttpRequest, name: str) -> HttpResponse:
    domain = _domain_or_404(name)
    return render(
        request,
        "domains/domain.html",
        _context(
            request,
            domain=domain,
            signals=selectors.domain_detail(domain),
            registration=selectors.registration(domain),
            certificates=selectors.certificates(domain),
            alerts=selectors.alerts(domain=domain)[:50],
            kinds=rules.ALL_KINDS,
            all_signals=[Signal(s) for s in selectors.enabled_signals()],
        ),
    )


@staff_required
@require_GET
def check_page(request: HttpRequest, name: str, signal: str) -> HttpResponse:
    domain = _domain_or_404(name)
    check = domain.checks.filter(signal=signal).first()
    if check is None:
        raise Http404
    approved = selectors.approved_baseline(check)
    latest = selectors.latest_observation(check)
    return render(
        request,
        "domains/check.html",
        _context(
            request,
            domain=domain,
            check=check,
            state=selectors.effective_state(check),
            history=selectors.history(check),
            approved=approved,
            against_baseline=selectors.diff(approved.value, latest.value)
            if approved and latest
            else [],
            latest_json=json.dumps(latest.value, indent=2, sort_keys=True) if latest else "",
        ),
    )


@staff_required
@require_GET
def incident_page(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = Incident.objects.select_related("domain").filter(pk=incident_id).first()
    if incident is None:
        raise Http404
    moves = sorted(services.INCIDENT_TRANSITIONS[incident.status])
    return render(
        request,
        "domains/incident.html",
        _context(
            request,
            incident=incident,
            moves=moves,
            log=incident.log.select_related("actor"),
            alerts=incident.alerts.all(),
        ),
    )


@staff_required
@require_POST
def incident_action(request: HttpRequest, incident_id: int) -> HttpResponse:
    action = request.POST.get("action", "")
    actor = current_user(request)
    try:
        if action == "transition":
            services.transition_incident(
                incident_id=incident_id,
                to=request.POST.get("to", ""),
                actor=actor,
                client=ClientInfo.from_request(request),
                note=request.POST.get("note", ""),
            )
            _flash(request, "The incident moved on.")
        elif action == "note":
            services.add_incident_note(
                incident_id=incident_id, actor=actor, note=request.POST.get("note", "")
            )
            _flash(request, "Note added.")
        elif action == "step":
            try:
                step = int(request.POST.get("step", ""))
            except ValueError:
                step = -1
            services.check_runbook_step(incident_id=incident_id, step=step, actor=actor)
            _flash(request, "Step done.")
        else:
            _flash(request, "Unknown action.", "error")
    except PortalError as exc:
        if exc.code == "incident_not_found":
            raise Http404 from exc
        _flash(request, exc.detail, "error")
    return redirect("console-incident", incident_id=incident_id)


@staff_required
@require_GET
def migration_page(request: HttpRequest) -> HttpResponse:
    new_origin = request.GET.get("to", "").strip()
    if new_origin and not new_origin.startswith("https://"):
        new_origin = ""
    plan = selectors.migration_plan(new_origin=new_origin)
    return render(
        request,
        "domains/migration.html",
        _context(
            request,
            plan=plan,
            related_json=json.dumps(plan["related_origins_file"], indent=2),
            chart={
                "labels": [
                    f"only {plan['old_origin']}",
                    "both",
                    f"only {new_origin or '(new origin)'}",
                ],
                "counts": [plan["old_only"], plan["both"], plan["new_only"]],
            },
        ),
    )


class ExpectChangeApi(APIView):
    """POST /console/domains/<name>/expected: pre-approve a change (staff, sudo mode)."""

    permission_classes = [IsAuthenticated, IsAdminUser, ReauthenticatedRecently]

    class InputSerializer(serializers.Serializer[Any]):
        signal = serializers.ChoiceField(choices=Signal.values)
        kind = serializers.ChoiceField(choices=rules.ALL_KINDS)
        value = serializers.JSONField()
        note = serializers.CharField(required=False, allow_blank=True, max_length=300)

    @extend_schema(exclude=True)
    def post(self, request: Request, name: str) -> Response:
        domain = selectors.domain_named(name)
        if domain is None:
            raise PortalError("domain_not_found", "That domain is not watched.", status=404)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        expected = services.expect_change(
            domain=domain,
            signal=data.validated_data["signal"],
            kind=data.validated_data["kind"],
            value=data.validated_data["value"],
            note=data.validated_data.get("note", ""),
            actor=current_user(request),
            client=ClientInfo.from_request(request),
        )
        return Response({"id": expected.pk, "expires_at": expected.expires_at}, status=201)
