"""Liveness and readiness probes."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from messaging.models import RelayHeartbeat
from messaging.redis import redis_client
from messaging.relay import outbox_backlog, outbox_models

RELAY_STALE_AFTER = timedelta(seconds=15)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check(fn) -> dict:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not raise
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


def _ping_db(alias: str) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {f"db:{alias}": _check(lambda alias=alias: _ping_db(alias)) for alias in settings.DATABASES}
    checks["redis"] = _check(lambda: redis_client().ping())
    ready = all(c["ok"] for c in checks.values())
    relay: dict = {"alive": False}
    if checks["db:messaging"]["ok"]:
        beat = RelayHeartbeat.objects.order_by("-beat_at").first()
        if beat is not None:
            age = (timezone.now() - beat.beat_at).total_seconds()
            relay = {
                "alive": age < RELAY_STALE_AFTER.total_seconds(),
                "last_beat_s_ago": round(age, 1),
                "relay_id": beat.relay_id,
            }
        backlog = {}
        for model in outbox_models():
            try:
                count, oldest = outbox_backlog(model)
                held, held_oldest = outbox_backlog(model, held=True)
                backlog[model.objects.db] = {
                    "unpublished": count,
                    "oldest_age_s": round(oldest, 3),
                    # Held back on purpose while the saga is behind: not a stalled relay.
                    "held": held,
                    "held_oldest_age_s": round(held_oldest, 3),
                }
            except Exception as exc:  # noqa: BLE001
                backlog[model.objects.db] = {"error": type(exc).__name__}
        relay["backlog"] = backlog
    return JsonResponse({"ready": ready, "checks": checks, "relay": relay}, status=200 if ready else 503)
