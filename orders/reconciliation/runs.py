"""A reconciliation run: read every page of orders and what the other modules
recorded about it, check, repair what is safe (when asked), and store it all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections
from django.utils import timezone

from inventory.contracts import StockTally
from messaging.api import BusinessError
from orders.db import ALIAS, atomic
from orders.reconciliation import checks, repairs, sources
from orders.reconciliation.findings import Finding
from orders.reconciliation.models import (
    UNRESOLVED_STATUSES,
    Discrepancy,
    DiscrepancyKind,
    DiscrepancyStatus,
    ReconciliationRun,
    RunStatus,
    RunTrigger,
)
from orders.reconciliation.repairs import RepairOutcome
from orders.reconciliation.sources import Scope, StalledMessage
from orders.reconciliation.totals import Totals
from payments.api import get_ledger_balance

Progress = Callable[[int, int], None]
LOCK_KEY = "orders:reconciliation"
MESSAGES_PER_SOURCE = 5000


class ReconciliationBusy(BusinessError):
    http_status = 409

    def __init__(self) -> None:
        super().__init__("reconciliation_busy", "another reconciliation is running")


@dataclass(frozen=True)
class RunOptions:
    scope: Scope = field(default_factory=Scope)
    fix: bool = False
    outbox_stale_after: timedelta = field(
        default_factory=lambda: timedelta(seconds=settings.RECONCILIATION_OUTBOX_STALE_S)
    )
    page_size: int = 500
    trigger: str = RunTrigger.COMMAND


@dataclass(frozen=True)
class Outcome:
    finding: Finding
    repair: RepairOutcome | None = None

    @property
    def status(self) -> str:
        return self.repair.status if self.repair else DiscrepancyStatus.OPEN


@contextmanager
def _exclusive() -> Iterator[None]:
    """One run at a time across all processes (a session advisory lock, freed if the process dies)."""
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 13))", [LOCK_KEY])
        (acquired,) = cursor.fetchone()
    if not acquired:
        raise ReconciliationBusy()
    try:
        yield
    finally:
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 13))", [LOCK_KEY])


def _repair_orders(findings: list[Finding], now: datetime) -> list[Outcome]:
    """Compensate, then read the repaired orders again: a repair counts only if its discrepancy is gone."""
    done = repairs.compensate_orders(findings)
    repaired = sorted({order_id for (_, order_id), o in done.items() if o.status == DiscrepancyStatus.REPAIRED})
    remaining = {f.key for f in checks.check_orders(sources.settled_facts(sources.orders_by_id(repaired)), now)}
    outcomes = []
    for finding in findings:
        repair = done.get((finding.repair, finding.order_id)) if finding.order_id else None
        if repair and repair.status == DiscrepancyStatus.REPAIRED and finding.key in remaining:
            repair = RepairOutcome(DiscrepancyStatus.REPAIR_FAILED, f"{repair.note}, yet the discrepancy remains")
        outcomes.append(Outcome(finding, repair))
    return outcomes


def _check_orders(options: RunOptions, now: datetime, totals: Totals, on_progress: Progress) -> list[Outcome]:
    in_scope = sources.scoped_orders(options.scope, until=now).count()
    on_progress(0, in_scope)
    outcomes: list[Outcome] = []
    read = 0
    for page in sources.order_pages(options.scope, until=now, page_size=options.page_size):
        facts = sources.settled_facts(page)
        totals.add(facts)
        totals.skipped_moving += len(page) - len(facts)
        findings = checks.check_orders(facts, now)
        outcomes += _repair_orders(findings, now) if options.fix else [Outcome(f) for f in findings]
        read += len(page)
        on_progress(read, max(in_scope, read))
    return outcomes


def _other_findings(totals: Totals, tallies: list[StockTally], explained: int) -> list[Finding]:
    return [
        *checks.ledger_out_of_balance(
            debit_minor=totals.ledger_debit_minor, credit_minor=totals.ledger_credit_minor, explained_minor=explained
        ),
        *checks.stock_sold_mismatch(tallies),
        *checks.stock_reserved_mismatch(tallies),
    ]


def _apply_deferred_repairs(outcomes: list[Outcome], stalled: list[StalledMessage]) -> list[Outcome]:
    """Repairs that act on many orders at once: re-issuing sagas and draining outboxes."""
    sagas = {o.finding.order_id for o in outcomes if o.finding.repair == repairs.RESUME_SAGA}
    resumed = repairs.resume_sagas({order_id for order_id in sagas if order_id is not None})
    published = repairs.publish_stalled(stalled, batch_size=settings.MESSAGING_RELAY_BATCH_SIZE)
    result = []
    for o in outcomes:
        if o.finding.repair == repairs.RESUME_SAGA and o.finding.order_id in resumed:
            o = Outcome(o.finding, resumed[o.finding.order_id])
        elif o.finding.repair == repairs.PUBLISH_OUTBOX and o.finding.reference in published:
            o = Outcome(o.finding, published[o.finding.reference])
        result.append(o)
    return result


def _reconcile(options: RunOptions, on_progress: Progress) -> tuple[list[Outcome], Totals]:
    now = timezone.now()
    totals = Totals()
    outcomes = _check_orders(options, now, totals, on_progress)
    totals.ledger_debit_minor, totals.ledger_credit_minor = get_ledger_balance()
    stalled = sources.stalled_messages(
        options.scope, created_before=now - options.outbox_stale_after, limit=MESSAGES_PER_SOURCE
    )
    letters = sources.open_dead_letters(options.scope, limit=MESSAGES_PER_SOURCE)
    outcomes += [
        Outcome(f)
        for f in (
            *_other_findings(totals, sources.stock_tallies(), _explained_imbalance(outcomes)),
            *checks.outbox_stalled(stalled, now),
            *checks.dead_letter_open(letters),
        )
    ]
    if options.fix:
        outcomes = _apply_deferred_repairs(outcomes, stalled)
    return outcomes, totals


def _explained_imbalance(outcomes: list[Outcome]) -> int:
    unbalanced = [o.finding for o in outcomes if o.finding.kind == DiscrepancyKind.LEDGER_UNBALANCED]
    return sum((f.expected or 0) - (f.actual or 0) for f in unbalanced)


def _store(run: ReconciliationRun, outcomes: list[Outcome], totals: Totals) -> None:
    with atomic():
        Discrepancy.objects.bulk_create(
            [
                Discrepancy(
                    run=run,
                    kind=o.finding.kind,
                    status=o.status,
                    order_id=o.finding.order_id,
                    modules=list(o.finding.modules),
                    sku=o.finding.sku,
                    reference=o.finding.reference,
                    unit=o.finding.unit,
                    expected=o.finding.expected,
                    actual=o.finding.actual,
                    summary=o.finding.summary,
                    suggested_repair=o.finding.suggested_repair,
                    repair=o.finding.repair,
                    outcome=o.repair.note if o.repair else "",
                    details=o.finding.details,
                )
                for o in outcomes
            ],
            batch_size=500,
        )
        run.orders_checked = sum(totals.states.values())
        run.found = len(outcomes)
        run.repaired = sum(o.status == DiscrepancyStatus.REPAIRED for o in outcomes)
        run.unresolved = sum(o.status in UNRESOLVED_STATUSES for o in outcomes)
        run.totals = totals.as_dict()
        run.status = RunStatus.FINISHED
        run.finished_at = timezone.now()
        run.save()


def _silent(done: int, total: int) -> None:
    return None


def reconciliation_run(*, options: RunOptions, on_progress: Progress | None = None) -> ReconciliationRun:
    """Compare every module's records over ``options.scope``, repair what is safe if ``options.fix``,
    and store the run with its discrepancies. Raises ReconciliationBusy while another run is going."""
    with _exclusive():
        run = ReconciliationRun.objects.create(
            trigger=options.trigger, since=options.scope.since, region=options.scope.region, fix=options.fix
        )
        try:
            outcomes, totals = _reconcile(options, on_progress or _silent)
            _store(run, outcomes, totals)
        except Exception as exc:
            ReconciliationRun.objects.filter(pk=run.pk).update(
                status=RunStatus.FAILED, finished_at=timezone.now(), error=f"{type(exc).__name__}: {exc}"[:5000]
            )
            raise
    return run


def discrepancies_resolve(*, discrepancy_ids: list[int], actor: str, note: str) -> int:
    """A person settled these discrepancies by hand; returns how many were still unresolved."""
    if not note.strip():
        raise BusinessError("note_required", "say what was done to resolve the discrepancy")
    with atomic():
        return Discrepancy.objects.filter(pk__in=discrepancy_ids, status__in=UNRESOLVED_STATUSES).update(
            status=DiscrepancyStatus.RESOLVED,
            outcome=note,
            resolved_by=actor,
            resolved_at=timezone.now(),
        )
