from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet
from django.utils import timezone
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from messaging.dead_letters import DeadLetterNotActionable, dead_letter_resolve, dead_letter_retry
from messaging.models import DeadLetter


class Command(BaseCommand):
    help = "Work with dead letters from a shell: list, retry (rate-limited), resolve."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="verb", required=True)
        for verb in ("list", "retry", "resolve"):
            p = sub.add_parser(verb)
            p.add_argument("--id", type=int, action="append", dest="ids", help="Dead letter id (repeatable).")
            p.add_argument("--status", default="open", help="open, retried, resolved, discarded or all")
            p.add_argument("--module")
            p.add_argument("--message-type")
            p.add_argument("--consumer")
            p.add_argument("--order")
            p.add_argument("--older-than-hours", type=float)
            p.add_argument("--limit", type=int, default=1000)
            if verb == "retry":
                p.add_argument("--rate", type=float, default=20.0, help="Retries per second at most.")
                p.add_argument("--reason", default="retried from the shell")
            if verb == "resolve":
                p.add_argument("--note", required=True)
            p.add_argument("--actor", default="shell")

    def _select(self, o: dict[str, Any]) -> QuerySet[DeadLetter]:
        qs = DeadLetter.objects.all()
        if o.get("ids"):
            qs = qs.filter(pk__in=o["ids"])
        if o["status"] != "all":
            qs = qs.filter(status=o["status"])
        for field, key in (
            ("module", "module"),
            ("message_type", "message_type"),
            ("consumer", "consumer"),
            ("order_id", "order"),
        ):
            if o.get(key):
                qs = qs.filter(**{field: o[key]})
        if o.get("older_than_hours"):
            qs = qs.filter(last_failed_at__lt=timezone.now() - timedelta(hours=o["older_than_hours"]))
        return qs.order_by("pk")[: o["limit"]]

    def handle(self, *args: Any, **o: Any) -> None:
        letters = list(self._select(o))
        console = Console(file=self.stdout, width=160)
        if o["verb"] == "list":
            table = Table("id", "status", "module", "type", "consumer", "order", "error", "attempts", "last failure")
            for d in letters:
                table.add_row(
                    str(d.pk),
                    d.status,
                    d.module,
                    d.message_type,
                    d.consumer,
                    d.order_id,
                    f"{d.error_type.rsplit('.', 1)[-1]}: {d.error_message[:60]}",
                    str(d.attempts),
                    d.last_failed_at.strftime("%Y-%m-%d %H:%M:%S"),
                )
            console.print(table)
            console.print(f"{len(letters)} dead letter(s)")
            return
        if not letters:
            raise CommandError("no dead letter matches")
        done, refused = 0, []
        with Progress(console=console, transient=False) as progress:
            task = progress.add_task(o["verb"], total=len(letters))
            for d in letters:
                try:
                    if o["verb"] == "retry":
                        dead_letter_retry(letter_id=d.pk, actor=o["actor"], reason=o["reason"])
                        time.sleep(1.0 / o["rate"])
                    else:
                        dead_letter_resolve(letter_id=d.pk, actor=o["actor"], note=o["note"])
                    done += 1
                except DeadLetterNotActionable as exc:
                    refused.append(str(exc))
                progress.advance(task)
        console.print(f"{o['verb']}: {done} done, {len(refused)} refused")
        for reason in refused[:20]:
            console.print(f"  {reason}")
