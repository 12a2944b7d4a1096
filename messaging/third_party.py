"""Knobs for the fakes of third parties (payment gateway, carrier, …).

A fake reads its profile from Redis on every call, so a test or a demo can
change a running worker's gateway to slow, flaky or declining without a
restart: ``HSET fake:payment_gateway latency_ms 200 timeout_rate 0.1``.
Defaults come from settings.FAKE_THIRD_PARTIES.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from django.conf import settings

from messaging.redis import redis_client

PROFILE_TTL_S = 1.0


@dataclass(frozen=True)
class FaultProfile:
    latency_ms: float = 0.0
    timeout_rate: float = 0.0
    decline_rate: float = 0.0

    def wait(self) -> None:
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000.0)

    def times_out(self) -> bool:
        return self.timeout_rate > 0 and random.random() < self.timeout_rate

    def declines(self) -> bool:
        return self.decline_rate > 0 and random.random() < self.decline_rate


_CACHE: dict[str, tuple[float, FaultProfile]] = {}


def fault_profile(name: str) -> FaultProfile:
    """The fake's current profile, read from Redis at most every ``PROFILE_TTL_S``."""
    cached = _CACHE.get(name)
    if cached is not None and time.monotonic() - cached[0] < PROFILE_TTL_S:
        return cached[1]
    values: dict[str, float] = dict(getattr(settings, "FAKE_THIRD_PARTIES", {}).get(name, {}))
    for key, raw in redis_client().hgetall(f"fake:{name}").items():
        values[key.decode()] = float(raw)
    profile = FaultProfile(**{k: v for k, v in values.items() if k in FaultProfile.__dataclass_fields__})
    _CACHE[name] = (time.monotonic(), profile)
    return profile


def forget_fault_profiles() -> None:
    _CACHE.clear()


def set_fault_profile(name: str, **values: float) -> None:
    """Change a fake's profile; other processes see it within ``PROFILE_TTL_S``."""
    _CACHE.pop(name, None)
    key = f"fake:{name}"
    client = redis_client()
    client.delete(key)
    if values:
        client.hset(key, mapping={k: str(v) for k, v in values.items()})
