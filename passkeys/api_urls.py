from django.urls import path

from passkeys import api

urlpatterns = [
    path("auth/register/options", api.RegisterOptionsApi.as_view(), name="api-register-options"),
    path("auth/register/verify", api.RegisterVerifyApi.as_view(), name="api-register-verify"),
    path("auth/login/options", api.LoginOptionsApi.as_view(), name="api-login-options"),
    path("auth/login/verify", api.LoginVerifyApi.as_view(), name="api-login-verify"),
    path("auth/reauth/options", api.ReauthOptionsApi.as_view(), name="api-reauth-options"),
    path("auth/reauth/verify", api.ReauthVerifyApi.as_view(), name="api-reauth-verify"),
    path("me", api.MeApi.as_view(), name="api-me"),
    path("passkeys", api.PasskeyListApi.as_view(), name="api-passkeys"),
    path("passkeys/<int:passkey_id>", api.PasskeyDetailApi.as_view(), name="api-passkey"),
    path(
        "passkeys/register/options",
        api.PasskeyRegisterOptionsApi.as_view(),
        name="api-passkeys-register-options",
    ),
    path(
        "passkeys/register/verify",
        api.PasskeyRegisterVerifyApi.as_view(),
        name="api-passkeys-register-verify",
    ),
    path(
        "operations/<int:operation_id>/options",
        api.OperationOptionsApi.as_view(),
        name="api-operation-options",
    ),
    path(
        "operations/<int:operation_id>/sign",
        api.OperationSignApi.as_view(),
        name="api-operation-sign",
    ),
    path(
        "operations/<int:operation_id>/retry",
        api.OperationRetryApi.as_view(),
        name="api-operation-retry",
    ),
    path("signatures/options", api.SignatureOptionsApi.as_view(), name="api-signatures-options"),
    path("signatures/verify", api.SignatureVerifyApi.as_view(), name="api-signatures-verify"),
]
