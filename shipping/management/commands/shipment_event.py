from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from messaging.api import BusinessError
from shipping.api import get_shipment, record_fulfilment_event


class Command(BaseCommand):
    help = "Record a fulfilment event (shipped, delivered) for a shipment, by shipment id or --order id."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("event", choices=["shipped", "delivered"])
        parser.add_argument("shipment_id", nargs="?")
        parser.add_argument("--order", help="Order id instead of the shipment id.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["order"]:
                shipment = get_shipment(order_id=uuid.UUID(options["order"]))
                if shipment is None:
                    raise CommandError(f"order {options['order']} has no shipment")
                shipment_id = uuid.UUID(shipment.shipment_id)
            elif options["shipment_id"]:
                shipment_id = uuid.UUID(options["shipment_id"])
            else:
                raise CommandError("give a shipment id or --order")
            info = record_fulfilment_event(shipment_id=shipment_id, event=options["event"])
        except (ValueError, BusinessError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{info.tracking_number}: {info.status} (order {info.order_id})")
