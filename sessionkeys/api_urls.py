from django.urls import path

from sessionkeys import api, dapps_api

urlpatterns = [
    path("sessions", api.SessionListApi.as_view(), name="api-sessions"),
    path("sessions/preview", api.SessionPreviewApi.as_view(), name="api-sessions-preview"),
    path("sessions/reject", api.SessionRejectApi.as_view(), name="api-sessions-reject"),
    path("sessions/revoke-all", api.SessionRevokeAllApi.as_view(), name="api-sessions-revoke-all"),
    path(
        "sessions/operations/prepare",
        api.RelayPrepareApi.as_view(),
        name="api-sessions-operations-prepare",
    ),
    path("sessions/operations", api.RelaySendApi.as_view(), name="api-sessions-operations"),
    path(
        "sessions/operations/<str:user_op_hash>",
        api.RelayStatusApi.as_view(),
        name="api-sessions-operation",
    ),
    path("sessions/<int:session_id>", api.SessionDetailApi.as_view(), name="api-session"),
    path(
        "sessions/<int:session_id>/revoke",
        api.SessionRevokeApi.as_view(),
        name="api-session-revoke",
    ),
    path("dapps", dapps_api.DappListApi.as_view(), name="api-dapps"),
    path("dapps/connect", dapps_api.DappConnectApi.as_view(), name="api-dapps-connect"),
    path(
        "dapps/disconnect",
        dapps_api.DappDisconnectOriginApi.as_view(),
        name="api-dapps-disconnect",
    ),
    path(
        "dapps/capabilities",
        dapps_api.DappCapabilitiesApi.as_view(),
        name="api-dapps-capabilities",
    ),
    path("dapps/calls", dapps_api.DappCallsApi.as_view(), name="api-dapps-calls"),
    path(
        "dapps/calls/preview",
        dapps_api.DappCallsPreviewApi.as_view(),
        name="api-dapps-calls-preview",
    ),
    path(
        "dapps/calls/<str:bundle_id>",
        dapps_api.DappCallsStatusApi.as_view(),
        name="api-dapps-calls-status",
    ),
    path(
        "dapps/<int:connection_id>/disconnect",
        dapps_api.DappDisconnectApi.as_view(),
        name="api-dapps-disconnect-one",
    ),
]
