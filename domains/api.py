"""The staff API of the domain watch: /api/v1/admin/domains, alerts and the lockdown."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import ReauthenticatedRecently, current_user
from domains import selectors, services
from domains.models import Alert, WatchedDomain
from portal.client_info import ClientInfo
from portal.errors import NotFound


class ErrorSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    detail = serializers.CharField()


ERRORS = {
    401: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
}


class StaffApi(APIView):
    permission_classes = [IsAuthenticated, IsAdminUser]


def _domain(name: str) -> WatchedDomain:
    domain = selectors.domain_named(name)
    if domain is None:
        raise NotFound("domain_not_found", "That domain is not watched.")
    return domain


class SignalSerializer(serializers.Serializer[Any]):
    signal = serializers.CharField()
    state = serializers.ChoiceField(choices=["ok", "warning", "critical", "unknown", "stale"])
    summary = serializers.CharField()
    last_run_at = serializers.DateTimeField(allow_null=True)
    latest = serializers.DictField(allow_null=True, help_text="{observed_at, value, error}")
    baseline = serializers.DictField(
        allow_null=True, help_text="the approved baseline: {approved_at, approved_by, value}"
    )
    proposed_baseline = serializers.DictField(allow_null=True)


class DomainSummarySerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]
    states = serializers.DictField(child=serializers.CharField(), help_text="signal → state")
    open_alerts = serializers.IntegerField()


def _signal_json(row: dict[str, Any]) -> dict[str, Any]:
    latest, approved, proposed = row["latest"], row["approved"], row["proposed"]
    return {
        "signal": row["signal"],
        "state": row["state"],
        "summary": row["summary"],
        "last_run_at": row["last_run_at"],
        "latest": {
            "observed_at": latest.observed_at,
            "last_seen_at": latest.last_seen_at,
            "value": latest.value,
            "error": latest.error,
        }
        if latest
        else None,
        "baseline": {
            "approved_at": approved.approved_at,
            "approved_by": approved.approved_by.username if approved.approved_by else None,
            "value": approved.value,
        }
        if approved
        else None,
        "proposed_baseline": {"created_at": proposed.created_at, "value": proposed.value}
        if proposed
        else None,
    }


class DomainListApi(StaffApi):
    @extend_schema(
        responses={200: DomainSummarySerializer(many=True), **ERRORS},
        operation_id="admin_domains_list",
        summary="Watched domains and the state of each signal (staff)",
    )
    def get(self, request: Request) -> Response:
        result = []
        for domain in selectors.watched_domains():
            rows = selectors.domain_detail(domain)
            result.append(
                {
                    "name": domain.name,
                    "source": domain.source,
                    "states": {row["signal"]: row["state"] for row in rows},
                    "open_alerts": domain.alerts.filter(status=Alert.Status.OPEN).count(),
                }
            )
        return Response(result)


class DomainDetailApi(StaffApi):
    class OutputSerializer(serializers.Serializer[Any]):
        name = serializers.CharField()
        signals = SignalSerializer(many=True)

    @extend_schema(
        responses={200: OutputSerializer, **ERRORS},
        operation_id="admin_domains_detail",
        summary="Per signal: state, latest observation, baseline (staff)",
    )
    def get(self, request: Request, name: str) -> Response:
        domain = _domain(name)
        return Response(
            {
                "name": domain.name,
                "signals": [_signal_json(row) for row in selectors.domain_detail(domain)],
            }
        )


class BaselineApi(StaffApi):
    permission_classes = [IsAuthenticated, IsAdminUser, ReauthenticatedRecently]

    class InputSerializer(serializers.Serializer[Any]):
        signals = serializers.ListField(
            child=serializers.CharField(),
            required=False,
            help_text="only these signals (default: every signal with an observation)",
        )

    class OutputSerializer(serializers.Serializer[Any]):
        approved = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, 409: ErrorSerializer, **ERRORS},
        operation_id="admin_domains_baseline",
        summary="Approve the current observations as the baseline (staff, sudo mode)",
    )
    def post(self, request: Request, name: str) -> Response:
        domain = _domain(name)
        data = self.InputSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        approved = services.approve_baseline(
            domain=domain,
            actor=current_user(request),
            client=ClientInfo.from_request(request),
            signals=data.validated_data.get("signals"),
        )
        return Response({"approved": approved})


class AlertSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    domain = serializers.CharField(source="domain.name")
    signal = serializers.CharField()
    kind = serializers.CharField()
    severity = serializers.CharField()
    summary = serializers.CharField()
    fingerprint = serializers.CharField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    status = serializers.CharField()


class AlertListApi(StaffApi):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=["open", "closed"], required=False),
        ],
        responses={200: AlertSerializer(many=True), **ERRORS},
        operation_id="admin_alerts_list",
        summary="Alerts, newest first (staff)",
    )
    def get(self, request: Request) -> Response:
        wanted = request.query_params.get("status")
        if wanted not in (None, "open", "closed"):
            from portal.errors import PortalError

            raise PortalError("invalid_status", "status is open or closed.")
        return Response(AlertSerializer(selectors.alerts(status=wanted)[:500], many=True).data)


class LockdownApi(StaffApi):
    class StateSerializer(serializers.Serializer[Any]):
        enabled = serializers.BooleanField()
        reason = serializers.CharField(allow_blank=True, max_length=300)

    def get_permissions(self) -> list[Any]:
        permissions = list(super().get_permissions())
        if self.request.method == "POST":
            permissions.append(ReauthenticatedRecently())
        return permissions

    @extend_schema(
        responses={200: StateSerializer, **ERRORS},
        operation_id="admin_lockdown_get",
        summary="The lockdown switch (staff)",
    )
    def get(self, request: Request) -> Response:
        state = selectors.lockdown_state()
        return Response({"enabled": state.enabled, "reason": state.reason})

    @extend_schema(
        request=StateSerializer,
        responses={200: StateSerializer, 400: ErrorSerializer, **ERRORS},
        operation_id="admin_lockdown_set",
        summary="Turn the lockdown on or off (staff, sudo mode)",
    )
    def post(self, request: Request) -> Response:
        data = self.StateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        state = services.set_lockdown(
            enabled=data.validated_data["enabled"],
            reason=data.validated_data["reason"],
            actor=current_user(request),
            client=ClientInfo.from_request(request),
        )
        return Response({"enabled": state.enabled, "reason": state.reason})
