"""A load report as a table for people."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from orders.loadgen.report import RECOVERY_TARGET_S, RECOVERY_WINDOW_S, Latency, LoadReport

LATENCY_NOTE = (
    "POST sent (client clock) → the order's first resting transition (server clock, from its history); "
    "one clock when generator and platform share the box"
)


def latency_text(latency: Latency) -> str:
    if not latency.count:
        return "—"
    return (
        f"p50 {latency.p50_ms:,.0f} · p95 {latency.p95_ms:,.0f} · p99 {latency.p99_ms:,.0f} · "
        f"max {latency.max_ms:,.0f} ms  (n={latency.count})"
    )


def counts_text(counts: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {count:g}" for name, count in counts.items()) or "none"


def load_table(report: LoadReport, title: str) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("measure", style="bold")
    table.add_column("value")
    table.add_row("final state seen by", report.observation)
    table.add_row(
        "orders",
        f"planned {report.planned} · sent {report.sent} · accepted {report.accepted} · "
        f"finished {report.finished} · unfinished {report.unfinished} · lost {report.lost} · "
        f"not accepted {report.not_accepted}",
    )
    table.add_row(
        "orders/s",
        f"sent {report.sent_per_s:.1f} · accepted {report.accepted_per_s:.1f} · finished {report.finished_per_s:.1f}",
    )
    table.add_row("POST → final state", latency_text(report.latency))
    table.add_row("  how measured", LATENCY_NOTE)
    table.add_row("accepted → final (server)", latency_text(report.saga_latency))
    table.add_row("POST answered", latency_text(report.post_latency))
    table.add_row("outcomes", counts_text(report.outcomes))
    table.add_row("unexpected outcomes", counts_text(report.unexpected))
    table.add_row("errors", counts_text(report.errors))
    table.add_row("GETs per order", f"{report.gets_per_order:.2f} (seen after resting: {_delay(report)})")
    table.add_row("generator lag", f"p99 {report.schedule_lag.p99_ms:,.0f} · max {report.schedule_lag.max_ms:,.0f} ms")
    table.add_row(
        "generator CPU",
        f"{report.generator_cpu_s:.1f} s over {report.generator_wall_s:.1f} s "
        f"({report.generator_cpu_share:.0%} of one core; subtract it from the box's load)",
    )
    for phase in report.phases:
        table.add_row(
            f"phase {phase.name}",
            f"sent {phase.sent} at {phase.sent_per_s:.1f}/s · accepted {phase.accepted_per_s:.1f}/s · "
            f"finished {phase.finished_per_s:.1f}/s · " + latency_text(phase.latency),
        )
    if report.phases:
        recovered = report.recovered_after_s
        table.add_row(
            f"phase {report.phases[-1].name}: p99 ≤ {RECOVERY_TARGET_S:g} s",
            "not within the phase"
            if recovered is None
            else f"from {recovered:g} s into it ({RECOVERY_WINDOW_S:g}-s windows)",
        )
    return table


def _delay(report: LoadReport) -> str:
    delay = report.detection_delay
    return f"p50 {delay.p50_ms:,.0f} · p99 {delay.p99_ms:,.0f} ms" if delay.count else "—"
