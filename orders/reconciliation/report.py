"""A stored run as plain data: what the command prints and writes as JSON."""

from __future__ import annotations

from typing import Any

from orders.reconciliation.models import UNRESOLVED_STATUSES, Discrepancy, DiscrepancyStatus, ReconciliationRun


def discrepancy_data(d: Discrepancy) -> dict[str, Any]:
    return {
        "id": d.pk,
        "kind": d.kind,
        "status": d.status,
        "order_id": str(d.order_id) if d.order_id else None,
        "modules": list(d.modules),
        "sku": d.sku,
        "reference": d.reference,
        "unit": d.unit,
        "expected": d.expected,
        "actual": d.actual,
        "summary": d.summary,
        "suggested_repair": d.suggested_repair,
        "repair": d.repair,
        "outcome": d.outcome,
        "details": d.details,
    }


def _by_kind(discrepancies: list[Discrepancy]) -> list[dict[str, Any]]:
    kinds: dict[str, dict[str, Any]] = {}
    for d in discrepancies:
        row = kinds.setdefault(d.kind, {"kind": d.kind, "modules": set(), "found": 0, "repaired": 0, "unresolved": 0})
        row["modules"] |= set(d.modules)
        row["found"] += 1
        row["repaired"] += d.status == DiscrepancyStatus.REPAIRED
        row["unresolved"] += d.status in UNRESOLVED_STATUSES
    return [{**row, "modules": sorted(row["modules"])} for _, row in sorted(kinds.items())]


def run_report(run: ReconciliationRun) -> dict[str, Any]:
    discrepancies = list(run.discrepancies.order_by("kind", "id"))
    return {
        "run": {
            "id": run.pk,
            "trigger": run.trigger,
            "status": run.status,
            "since": run.since.isoformat() if run.since else None,
            "region": run.region or None,
            "fix": run.fix,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "orders_checked": run.orders_checked,
            "found": run.found,
            "repaired": run.repaired,
            "unresolved": run.unresolved,
        },
        "totals": run.totals,
        "by_kind": _by_kind(discrepancies),
        "discrepancies": [discrepancy_data(d) for d in discrepancies],
    }
