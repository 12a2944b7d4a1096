"""Waiting until an isolated platform answers: web and relay (``/readyz``) and every worker (ping)."""

from __future__ import annotations

import http.client
import json
import time
import urllib.request

from config.celery import app
from orders.loadgen.processes import Platform

POLL_S = 0.5


class PlatformFailed(RuntimeError):
    """A process of the platform died or never became ready."""


def fail_if_dead(platform: Platform) -> None:
    dead = platform.dead()
    if dead:
        child = dead[0]
        raise PlatformFailed(f"{child.name} exited with {child.proc.returncode}; its log ends:\n{platform.tail(child)}")


def relay_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=5.0) as response:  # noqa: S310 - our own URL
            status, body = response.status, json.loads(response.read())
    except (OSError, ValueError, http.client.HTTPException):  # refused, timed out, 503, half-started, not JSON
        return False
    return status == 200 and bool(body.get("relay", {}).get("alive"))


def workers_ready(names: list[str]) -> bool:
    replies = app.control.ping(destination=names, timeout=1.0) or []
    answered = {name for reply in replies for name in reply}
    return set(names) <= answered


def await_ready(platform: Platform, timeout: float = 120.0) -> float:
    """Block until everything answers; return the seconds it took."""
    started = time.monotonic()
    names = [*platform.worker_names(), platform.batch_name()]
    while True:
        fail_if_dead(platform)
        if relay_ready(platform.base_url) and workers_ready(names):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise PlatformFailed(f"the platform was not ready within {timeout:.0f}s; logs in {platform.log_dir}")
        time.sleep(POLL_S)
