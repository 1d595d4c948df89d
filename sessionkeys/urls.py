from django.urls import path

from sessionkeys import views

urlpatterns = [
    path("connect", views.connect_page, name="connect"),
    path("account/sessions", views.sessions_page, name="account-sessions"),
    path(
        "account/dapps/<int:connection_id>/disconnect",
        views.disconnect_dapp,
        name="account-dapp-disconnect",
    ),
]
