"""Backoff for redeliveries: exponential, jittered, bounded, and always below
the broker's visibility timeout (Redis would otherwise deliver it twice)."""

from __future__ import annotations

import random
import sys

from django.conf import settings

# ``Task.retry(max_retries=...)`` for a message sent again past its retry limit: Celery reads ``None`` as the
# task's own limit, not as none, and past it raises instead of sending (the message would be acknowledged and lost).
NO_RETRY_LIMIT = sys.maxsize

# Keep a margin so that a message scheduled at the limit is still acknowledged
# before Redis considers it lost.
VISIBILITY_MARGIN_S = 60.0


class CountdownTooLong(ValueError):
    pass


def max_countdown_s() -> float:
    return float(settings.CELERY_VISIBILITY_TIMEOUT_S) - VISIBILITY_MARGIN_S


def bounded_countdown(seconds: float) -> float:
    """Return ``seconds`` if a broker can hold it safely, else refuse."""
    limit = max_countdown_s()
    if seconds < 0 or seconds > limit:
        raise CountdownTooLong(f"countdown {seconds:.1f}s exceeds the safe limit {limit:.1f}s")
    return seconds


def retry_countdown(retries: int, *, rng: random.Random | None = None) -> float:
    """Delay before attempt ``retries + 1``: base·2^retries with equal jitter, capped."""
    rng = rng or random
    ceiling = min(settings.MESSAGING_RETRY_MAX_S, max_countdown_s())
    raw = min(ceiling, settings.MESSAGING_RETRY_BASE_S * (2**retries))
    return bounded_countdown(raw / 2 + rng.uniform(0, raw / 2))
