from django.urls import path

from recovery import api

urlpatterns = [
    path("guardians", api.GuardianListApi.as_view(), name="api-guardians"),
    path("guardians/enable", api.GuardianEnableApi.as_view(), name="api-guardians-enable"),
    path("guardians/<int:guardian_id>", api.GuardianDetailApi.as_view(), name="api-guardian"),
    path(
        "guardians/<int:guardian_id>/accept",
        api.GuardianAcceptApi.as_view(),
        name="api-guardian-accept",
    ),
    path("recovery-codes", api.RecoveryCodeApi.as_view(), name="api-recovery-codes"),
    path(
        "recovery-codes/options",
        api.RecoveryCodeOptionsApi.as_view(),
        name="api-recovery-codes-options",
    ),
    path(
        "recoveries/<uuid:public_id>/recovery-code",
        api.RecoveryWithCodeApi.as_view(),
        name="api-recovery-with-code",
    ),
    path("recoveries/options", api.RecoveryOptionsApi.as_view(), name="api-recoveries-options"),
    path("recoveries", api.RecoveryStartApi.as_view(), name="api-recoveries"),
    path("recoveries/<uuid:public_id>", api.RecoveryDetailApi.as_view(), name="api-recovery"),
    path(
        "recoveries/<uuid:public_id>/approve",
        api.RecoveryApproveApi.as_view(),
        name="api-recovery-approve",
    ),
    path(
        "recoveries/<uuid:public_id>/refuse",
        api.RecoveryRefuseApi.as_view(),
        name="api-recovery-refuse",
    ),
    path(
        "recoveries/<uuid:public_id>/discard",
        api.RecoveryDiscardApi.as_view(),
        name="api-recovery-discard",
    ),
]
