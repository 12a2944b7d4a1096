from __future__ import annotations

import uuid

from django.db.models import Sum

from inventory.contracts import LineRequest, NoPriceInCurrency, PricedLine, StockLevel, UnknownSku
from inventory.models import Reservation, ReservationStatus, StockItem, StockPolicy


def stock_level(*, sku: str) -> StockLevel:
    item = StockItem.objects.filter(sku=sku).first()
    if item is None:
        raise UnknownSku(sku)
    unsettled = 0
    if item.policy == StockPolicy.EVENTUAL:
        unsettled = (
            Reservation.objects.filter(
                sku=sku, policy=StockPolicy.EVENTUAL, status=ReservationStatus.COMMITTED, settled_at__isnull=True
            ).aggregate(total=Sum("quantity"))["total"]
            or 0
        )
    # Sales of EVENTUAL items not yet booked on the row count as sold already.
    on_hand = item.on_hand - unsettled
    return StockLevel(
        sku=item.sku,
        name=item.name,
        policy=item.policy,
        on_hand=on_hand,
        reserved=item.reserved,
        available=on_hand - item.reserved,
        sold=item.sold + unsettled,
        backordered=max(0, -on_hand),
        unsettled=unsettled,
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
