from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal.health import healthz
from portal.wellknown import webauthn_related_origins

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path(".well-known/webauthn", webauthn_related_origins, name="webauthn-related-origins"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("passkeys.api_urls")),
    path("api/v1/", include("accounts.api_urls")),
    path("api/v1/", include("recovery.api_urls")),
    path("api/v1/", include("domains.api_urls")),
    path("api/v1/", include("sessionkeys.api_urls")),
    path("console/", include("domains.urls")),
    path("", include("sessionkeys.urls")),
    path("", include("passkeys.urls")),
    path("", include("recovery.urls")),
    path("", include("accounts.urls")),
]
