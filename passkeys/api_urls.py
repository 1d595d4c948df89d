from django.urls import path

from passkeys import api

urlpatterns = [
    path("register/options", api.RegisterOptionsApi.as_view(), name="api-register-options"),
    path("register/verify", api.RegisterVerifyApi.as_view(), name="api-register-verify"),
    path("login/options", api.LoginOptionsApi.as_view(), name="api-login-options"),
    path("login/verify", api.LoginVerifyApi.as_view(), name="api-login-verify"),
]
