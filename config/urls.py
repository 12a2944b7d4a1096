"""URL composition root: the only place that sees every module's HTTP surface."""

from django.contrib import admin
from django.urls import include, path

from messaging.health import healthz, readyz
from orders.http.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("healthz", healthz),
    path("readyz", readyz),
    path("", include("django_prometheus.urls")),
]
