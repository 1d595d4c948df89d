from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.home, name="home"),
    path("account/activity", views.activity_page, name="account-activity"),
    path("logout", views.logout_view, name="logout"),
]
