from django.urls import path

from recovery import views

urlpatterns = [
    path("account/recovery", views.recovery_page, name="account-recovery"),
    path("recover", views.recover_page, name="recover"),
    path("recover/<uuid:public_id>", views.recover_status_page, name="recover-status"),
]
