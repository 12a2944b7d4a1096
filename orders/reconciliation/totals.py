"""What each module recorded, added up per currency over the orders checked."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from orders.reconciliation.checks import FULFILLED
from orders.reconciliation.findings import OrderFacts


@dataclass
class CurrencyTotals:
    orders: int = 0
    fulfilled_minor: int = 0
    captured_minor: int = 0
    refunded_minor: int = 0
    ledger_sales_minor: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "orders": self.orders,
            "fulfilled_minor": self.fulfilled_minor,
            "captured_minor": self.captured_minor,
            "refunded_minor": self.refunded_minor,
            "net_captured_minor": self.captured_minor - self.refunded_minor,
            "ledger_sales_minor": self.ledger_sales_minor,
        }


@dataclass
class Totals:
    currencies: dict[str, CurrencyTotals] = field(default_factory=dict)
    states: Counter[str] = field(default_factory=Counter)
    skipped_moving: int = 0
    ledger_debit_minor: int = 0
    ledger_credit_minor: int = 0

    def add(self, facts: list[OrderFacts]) -> None:
        for f in facts:
            o, p = f.order, f.payment
            money = self.currencies.setdefault(o.currency.upper(), CurrencyTotals())
            money.orders += 1
            money.fulfilled_minor += o.total_minor if o.state in FULFILLED else 0
            money.captured_minor += p.captured_minor
            money.refunded_minor += p.refunded_minor
            money.ledger_sales_minor += p.ledger_sales_minor
            self.states[o.state] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "currencies": {code: t.as_dict() for code, t in sorted(self.currencies.items())},
            "orders_by_state": dict(sorted(self.states.items())),
            "orders_skipped_moving": self.skipped_moving,
            "ledger": {"debit_minor": self.ledger_debit_minor, "credit_minor": self.ledger_credit_minor},
        }
