from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from config.heap import freeze_startup_heap
from messaging.api import Relay


class Command(BaseCommand):
    help = "Publish committed outbox rows of every module to the broker (runs until SIGTERM)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=settings.MESSAGING_RELAY_BATCH_SIZE)
        parser.add_argument("--poll-interval", type=float, default=settings.MESSAGING_RELAY_POLL_INTERVAL_S)
        parser.add_argument("--retention-days", type=float, default=7.0)
        parser.add_argument(
            "--gather-ms",
            type=float,
            default=settings.MESSAGING_RELAY_GATHER_MS,
            help="While busy, claim at most once per this many ms, so that rows committed meanwhile go together.",
        )
        parser.add_argument("--once", action="store_true", help="Drain what is there now, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        relay = Relay(
            batch_size=options["batch_size"],
            poll_interval=options["poll_interval"],
            retention=timedelta(days=options["retention_days"]),
            gather_s=options["gather_ms"] / 1000.0,
        )
        if options["once"]:
            self.stdout.write(f"published {relay.drain_all()} messages")
            return
        relay.install_signal_handlers()
        freeze_startup_heap()
        relay.run()
