from django.urls import path

from accounts import api

urlpatterns = [
    path("auth/logout", api.LogoutApi.as_view(), name="api-logout"),
    path("me", api.MeApi.as_view(), name="api-me"),
    path("me/activity", api.ActivityApi.as_view(), name="api-me-activity"),
]
