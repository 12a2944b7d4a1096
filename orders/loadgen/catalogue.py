"""The SKUs a load run orders, and their stock."""

from __future__ import annotations

from dataclasses import dataclass, field

from inventory.api import set_stock

STRICT = "strict"
EVENTUAL = "eventual"
# Large enough that no run sells out; below the 32-bit limit of the stock columns.
DEFAULT_UNITS = 100_000_000

EVERYDAY_PRICES = {"EUR": 1500, "USD": 1700, "JPY": 2500}
# At or above the fraud rules' "large amount" in every currency.
PREMIUM_PRICES = {"EUR": 250_000, "USD": 270_000, "JPY": 400_000}


@dataclass(frozen=True)
class Sku:
    code: str
    policy: str
    prices: dict[str, int] = field(default_factory=lambda: dict(EVERYDAY_PRICES))


@dataclass(frozen=True)
class Catalogue:
    hot: Sku
    strict: tuple[Sku, ...]
    eventual: tuple[Sku, ...]
    premium: Sku

    def skus(self) -> tuple[Sku, ...]:
        return (self.hot, *self.strict, *self.eventual, self.premium)


def default_catalogue(prefix: str = "LOAD", *, strict: int = 8, eventual: int = 4) -> Catalogue:
    return Catalogue(
        hot=Sku(f"{prefix}-HOT", STRICT),
        strict=tuple(Sku(f"{prefix}-STRICT-{n}", STRICT) for n in range(strict)),
        eventual=tuple(Sku(f"{prefix}-EVENTUAL-{n}", EVENTUAL) for n in range(eventual)),
        premium=Sku(f"{prefix}-PREMIUM", STRICT, dict(PREMIUM_PRICES)),
    )


def seed_stock(catalogue: Catalogue, *, units: int = DEFAULT_UNITS) -> dict[str, int]:
    """Set every SKU's on-hand count to ``units``; return SKU → units."""
    for sku in catalogue.skus():
        set_stock(sku=sku.code, on_hand=units, policy=sku.policy, name=f"load test {sku.policy}", prices=sku.prices)
    return {sku.code: units for sku in catalogue.skus()}
