from django.urls import path

from domains import api

urlpatterns = [
    path("admin/domains", api.DomainListApi.as_view(), name="api-admin-domains"),
    path("admin/domains/<str:name>", api.DomainDetailApi.as_view(), name="api-admin-domain"),
    path(
        "admin/domains/<str:name>/baseline",
        api.BaselineApi.as_view(),
        name="api-admin-domain-baseline",
    ),
    path("admin/alerts", api.AlertListApi.as_view(), name="api-admin-alerts"),
    path("admin/lockdown", api.LockdownApi.as_view(), name="api-admin-lockdown"),
]
