"""What a generated order looks like: regions, lines, declines and fraud reviews."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from orders.loadgen.catalogue import Catalogue, Sku

NORMAL = "normal"
DECLINED = "declined"
REVIEW = "review"
# The state each kind of order is expected to rest in.
EXPECTED_STATE = {NORMAL: "confirmed", DECLINED: "rejected", REVIEW: "on_hold"}

REGION_WEIGHTS = {"eu": 0.5, "us": 0.3, "apac": 0.2}
REGION_CURRENCY = {"eu": "EUR", "us": "USD", "apac": "JPY"}
# A destination outside each region: with a large amount, fraud asks for a review.
FOREIGN_COUNTRY = {"eu": "US", "us": "DE", "apac": "DE"}


@dataclass(frozen=True)
class OrderMix:
    declined_share: float = 0.05
    review_share: float = 0.02
    hot_share: float = 0.3
    eventual_share: float = 0.35
    max_lines: int = 3

    def __post_init__(self) -> None:
        shares = (self.declined_share, self.review_share, self.hot_share, self.eventual_share)
        if any(not 0.0 <= share <= 1.0 for share in shares) or self.declined_share + self.review_share > 1.0:
            raise ValueError("shares must lie in [0, 1] and declines plus reviews may not exceed 1")
        if self.max_lines < 1:
            raise ValueError("an order has at least one line")


@dataclass(frozen=True)
class PlannedOrder:
    kind: str
    body: dict[str, Any]


class OrderFactory:
    """Deterministic for a given seed; every order has a customer of its own (no velocity flags)."""

    def __init__(self, *, mix: OrderMix, catalogue: Catalogue, run_id: str, seed: int) -> None:
        self.mix = mix
        self.catalogue = catalogue
        self.run_id = run_id
        self._rng = random.Random(seed)

    def order(self, index: int) -> PlannedOrder:
        kind = self._kind()
        region = self._rng.choices(list(REGION_WEIGHTS), weights=list(REGION_WEIGHTS.values()))[0]
        if kind == REVIEW:
            lines, country = [(self.catalogue.premium, 1)], FOREIGN_COUNTRY[region]
        else:
            lines, country = self._lines(), self._rng.choice(settings.REGION_COUNTRIES[region])
        body = {
            "customer_id": f"{self.run_id}-c{index}",
            "region": region,
            "currency": REGION_CURRENCY[region],
            "lines": [{"sku": sku.code, "quantity": quantity} for sku, quantity in lines],
            "payment_token": "tok_declined" if kind == DECLINED else "tok_ok",
            "shipping_address": {"country": country, "name": f"Load {index}", "city": "Testville"},
        }
        return PlannedOrder(kind=kind, body=body)

    def _kind(self) -> str:
        draw = self._rng.random()
        if draw < self.mix.declined_share:
            return DECLINED
        if draw < self.mix.declined_share + self.mix.review_share:
            return REVIEW
        return NORMAL

    def _lines(self) -> list[tuple[Sku, int]]:
        chosen: dict[str, tuple[Sku, int]] = {}
        if self._rng.random() < self.mix.hot_share:
            chosen[self.catalogue.hot.code] = (self.catalogue.hot, 1)
        for _ in range(self._rng.randint(1, self.mix.max_lines) - len(chosen)):
            sku = self._everyday_sku()
            chosen[sku.code] = (sku, self._rng.randint(1, 2))
        return list(chosen.values()) or [(self._everyday_sku(), 1)]

    def _everyday_sku(self) -> Sku:
        pool = self.catalogue.eventual if self._rng.random() < self.mix.eventual_share else self.catalogue.strict
        return self._rng.choice(pool)
