from django.urls import path

from passkeys import views

urlpatterns = [
    path("signup", views.signup_page, name="signup"),
    path("signup/verify", views.SignupVerifyView.as_view(), name="signup-verify"),
    path("login", views.login_page, name="login"),
    path("login/verify", views.LoginVerifyView.as_view(), name="login-verify"),
    path("account", views.account_page, name="account"),
    path("account/passkeys", views.passkeys_page, name="account-passkeys"),
]
