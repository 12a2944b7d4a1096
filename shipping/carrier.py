"""The carrier port and its fake (latency and outages on demand)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from messaging.api import fault_profile
from shipping.contracts import CarrierUnavailable, DestinationUnserviceable


@dataclass(frozen=True)
class Label:
    carrier: str
    tracking_number: str


class Carrier(Protocol):
    def create_label(self, *, idempotency_key: str, country: str) -> Label: ...
    def cancel_label(self, *, idempotency_key: str, tracking_number: str) -> None: ...


class FakeCarrier:
    """A carrier that derives tracking numbers from the idempotency key, so a
    retried call returns the same label, as a real carrier API would."""

    name = "carrier"

    def create_label(self, *, idempotency_key: str, country: str) -> Label:
        profile = fault_profile(self.name)
        profile.wait()
        if profile.times_out():
            raise CarrierUnavailable("carrier: timed out")
        if country.upper() in settings.CARRIER_UNSERVICEABLE_COUNTRIES:
            raise DestinationUnserviceable(country.upper())
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:12].upper()
        return Label(carrier="fakecarrier", tracking_number=f"FC{country.upper()}{digest}")

    def cancel_label(self, *, idempotency_key: str, tracking_number: str) -> None:
        profile = fault_profile(self.name)
        profile.wait()
        if profile.times_out():
            raise CarrierUnavailable("carrier: timed out")


@lru_cache(maxsize=1)
def carrier() -> Carrier:
    return import_string(settings.SHIPPING_CARRIER)()
