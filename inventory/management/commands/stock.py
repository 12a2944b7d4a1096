from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from inventory.api import get_stock_level, set_stock
from inventory.contracts import UnknownSku


class Command(BaseCommand):
    help = (
        "Manage stock: `stock set SKU --on-hand N [--policy strict|eventual] [--price EUR=1999 ...]`, `stock show SKU`."
    )

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        set_ = sub.add_parser("set", help="Create an item or set its on-hand count (reserved units stay reserved).")
        set_.add_argument("sku")
        set_.add_argument("--on-hand", type=int, required=True)
        set_.add_argument("--policy", choices=["strict", "eventual"])
        set_.add_argument("--name")
        set_.add_argument(
            "--price",
            action="append",
            default=[],
            metavar="CUR=MINOR",
            help="Unit price in minor units, e.g. EUR=1999 (repeatable).",
        )
        show = sub.add_parser("show", help="On hand, reserved, available and sold.")
        show.add_argument("sku")
        show.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **o: Any) -> None:
        if o["verb"] == "set":
            if o["on_hand"] < 0:
                raise CommandError("--on-hand must be 0 or more")
            prices = None
            if o["price"]:
                try:
                    prices = {cur.strip().upper(): int(amount) for cur, amount in (p.split("=", 1) for p in o["price"])}
                except ValueError as exc:
                    raise CommandError("--price takes CUR=MINOR_UNITS, e.g. EUR=1999") from exc
            level = set_stock(sku=o["sku"], on_hand=o["on_hand"], policy=o["policy"], name=o["name"], prices=prices)
        else:
            try:
                level = get_stock_level(sku=o["sku"])
            except UnknownSku as exc:
                raise CommandError(exc.detail) from exc
            if o.get("json"):
                self.stdout.write(json.dumps(level.model_dump()))
                return
        self.stdout.write(
            f"{level.sku} ({level.policy}): on hand {level.on_hand}, reserved {level.reserved}, "
            f"available {level.available}, sold {level.sold}"
            + (f", back-ordered {level.backordered}" if level.backordered else "")
            + (f" ({level.unsettled} sold not yet booked)" if level.unsettled else "")
        )
