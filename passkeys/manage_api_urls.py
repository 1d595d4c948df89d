from django.urls import path

from passkeys import manage_api

urlpatterns = [
    path("passkeys", manage_api.PasskeyListApi.as_view(), name="api-passkeys"),
    path("passkeys/<int:passkey_id>", manage_api.PasskeyDetailApi.as_view(), name="api-passkey"),
    path(
        "passkeys/register/options",
        manage_api.PasskeyRegisterOptionsApi.as_view(),
        name="api-passkeys-register-options",
    ),
    path(
        "passkeys/register/verify",
        manage_api.PasskeyRegisterVerifyApi.as_view(),
        name="api-passkeys-register-verify",
    ),
    path("auth/reauth/options", manage_api.ReauthOptionsApi.as_view(), name="api-reauth-options"),
    path("auth/reauth/verify", manage_api.ReauthVerifyApi.as_view(), name="api-reauth-verify"),
]
