from django.urls import path

from domains import views

urlpatterns = [
    path("", views.overview, name="console"),
    path("domains", views.add_domain, name="console-add-domain"),
    path("domains/<str:name>", views.domain_page, name="console-domain"),
    path(
        "domains/<str:name>/expected",
        views.ExpectChangeApi.as_view(),
        name="console-expect-change",
    ),
    path("domains/<str:name>/<str:signal>", views.check_page, name="console-check"),
    path("incidents/<int:incident_id>", views.incident_page, name="console-incident"),
    path(
        "incidents/<int:incident_id>/action",
        views.incident_action,
        name="console-incident-action",
    ),
    path("migration", views.migration_page, name="console-migration"),
]
