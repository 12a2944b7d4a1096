"""The Celery application; configuration comes from Django settings (CELERY_*)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("order_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fix-up closes every database connection before and after
# each task unless told to reuse them: with seven aliases that is seven new
# PostgreSQL sessions per saga, the largest CPU cost per order measured by
# `make bench`. Reuse them (broken ones are closed by the consumer wrapper).
app.conf.CELERY_DB_REUSE_MAX = 1000
app.autodiscover_tasks()
