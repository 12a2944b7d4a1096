"""URL composition root: the only place that sees every module's HTTP surface."""

from django.contrib import admin
from django.urls import path

from messaging.health import healthz, readyz
from messaging.metrics_view import metrics
from orders.http.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("healthz", healthz),
    path("readyz", readyz),
    path("metrics", metrics, name="metrics"),
]
