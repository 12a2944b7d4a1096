from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from orders.services.recovery import orders_decline_expired_reviews, orders_recover


class Command(BaseCommand):
    help = (
        "Resume sagas that stopped moving (worker killed, message lost) from their last recorded step, "
        "or compensate them when their deadline has passed; decline fraud reviews past their deadline."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--stale-after",
            type=float,
            default=settings.SAGA_STALE_AFTER_S,
            help="Seconds without progress before an order counts as stalled.",
        )
        parser.add_argument("--limit", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        issued = orders_recover(stale_after=timedelta(seconds=options["stale_after"]), limit=options["limit"])
        for order_id, message in issued:
            self.stdout.write(f"{order_id}: {message}")
        declined = orders_decline_expired_reviews(review_timeout=timedelta(seconds=settings.FRAUD_REVIEW_TIMEOUT_S))
        for order_id in declined:
            self.stdout.write(f"{order_id}: fraud review declined (deadline passed)")
        self.stdout.write(f"recovered {len(issued)} saga(s), declined {len(declined)} expired review(s)")
