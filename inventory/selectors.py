from __future__ import annotations

import uuid

from inventory.contracts import LineRequest, NoPriceInCurrency, PricedLine, StockLevel, UnknownSku
from inventory.models import Reservation, StockItem


def stock_level(*, sku: str) -> StockLevel:
    item = StockItem.objects.filter(sku=sku).first()
    if item is None:
        raise UnknownSku(sku)
    return StockLevel(
        sku=item.sku,
        name=item.name,
        policy=item.policy,
        on_hand=item.on_hand,
        reserved=item.reserved,
        available=item.available,
        sold=item.sold,
    )


def lines_priced(*, lines: list[LineRequest], currency: str) -> list[PricedLine]:
    items = StockItem.objects.in_bulk([line.sku for line in lines])
    priced = []
    for line in lines:
        item = items.get(line.sku)
        if item is None:
            raise UnknownSku(line.sku)
        price = item.prices.get(currency.upper())
        if price is None:
            raise NoPriceInCurrency(line.sku, currency)
        priced.append(PricedLine(sku=line.sku, quantity=line.quantity, unit_price_minor=int(price)))
    return priced


def reservations_of(*, order_id: uuid.UUID) -> dict[str, str]:
    """sku → reservation status for one order."""
    return dict(Reservation.objects.filter(order_id=order_id).values_list("sku", "status"))
