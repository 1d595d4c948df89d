from django.urls import path

from sessionkeys import api

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
]
