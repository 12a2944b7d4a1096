"""The benchmark's one summary: a table for people, then one JSON object for machines."""

from __future__ import annotations

import os
import platform as host
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from rich.table import Table

from orders.loadgen.bench import BenchResult, Measured
from orders.loadgen.costs import cpu_text, database_text, other_cpu_text, other_load_share, per_order_ms
from orders.loadgen.render import counts_text, latency_text
from orders.loadgen.report import RECOVERY_TARGET_S, RECOVERY_WINDOW_S, LoadReport
from orders.loadgen.resources import APP_KINDS
from orders.loadgen.targets import SPIKE_RECOVERY_S, Load, Target, Verdict, all_met, targets_judged

SHOWN_PROBLEMS = 20


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), host.processor()
    )
    memory_gb = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({model}), {memory_gb:.0f} GB; platform, PostgreSQL, Redis and generator on one box"


def _cpuinfo() -> list[str]:
    path = Path("/proc/cpuinfo")
    return path.read_text().splitlines() if path.exists() else []


def _spike_peak(measured: Measured) -> dict[str, float]:
    phase = next((p for p in measured.report.phases if p.name == "spike"), None)
    if phase is None:
        return {"spike_peak_p99_ms": 0.0, "spike_peak_orders_per_s": 0.0}
    return {"spike_peak_p99_ms": phase.latency.p99_ms, "spike_peak_orders_per_s": phase.finished_per_s}


def ok(result: BenchResult) -> bool:
    unfinished = result.measured.sustained.report.unfinished + result.measured.spike.report.unfinished
    return result.consistency.consistent and not (result.lost or result.stuck or unfinished)


def judged(result: BenchResult) -> list[Target]:
    m, plan = result.measured, result.plan
    spike_phases = m.spike.report.phases
    return targets_judged(
        sustained=Load.of(m.sustained.report, offered_per_s=plan.rate, seconds=plan.duration),
        spike=Load.of(
            m.spike.report,
            offered_per_s=plan.spike_base * plan.spike_factor,
            seconds=plan.spike_seconds[1],
            sent_per_s=max((phase.sent_per_s for phase in spike_phases), default=0.0),
        ),
        peak_rss_mb=result.peak_rss_mb,
        lost=result.lost,
        stuck=result.stuck,
        consistent=result.consistency.consistent,
    )


def figures(result: BenchResult) -> dict[str, Any]:
    targets = judged(result)
    m = result.measured
    sustained, spike = m.sustained.report, m.spike.report
    orders_per_s = sustained.finished_per_s
    app_rss = [mb for kind, mb in result.peak_rss_mb.items() if kind in APP_KINDS]
    return {
        "orders_per_s": orders_per_s,
        "sent_per_s": sustained.sent_per_s,
        "accepted_per_s": sustained.accepted_per_s,
        "p50_ms": sustained.latency.p50_ms,
        "p95_ms": sustained.latency.p95_ms,
        "p99_ms": sustained.latency.p99_ms,
        "max_ms": sustained.latency.max_ms,
        "spike_p99_ms": spike.latency.p99_ms,
        "spike_recovered_after_s": spike.recovered_after_s,
        **_spike_peak(m.spike),
        "reference_tasks_per_s": round(m.reference.tasks_per_s, 1),
        "ratio": round(orders_per_s / m.reference.tasks_per_s, 4) if m.reference.tasks_per_s else 0.0,
        "cpu_s_per_order": round(m.sustained.per_order(m.sustained.cpu.platform_s), 4),
        "app_cpu_s_per_order": round(m.sustained.per_order(m.sustained.cpu.app_s), 4),
        "cpu_ms_per_order_by_kind": per_order_ms(m.sustained.cpu, sustained.finished),
        "postgres_per_order": m.sustained.database.per(sustained.finished),
        "reference_cpu_ms_per_task": round(1000.0 * m.reference_cpu.by_kind.get("worker", 0.0) / m.reference.tasks, 3),
        "generator_cpu_s": m.sustained.cpu.generator_s,
        "other_cpu_s": m.sustained.cpu.other_s,
        "other_load_share": round(other_load_share(m.sustained.cpu), 3),
        "max_rss_mb": max(app_rss, default=0.0),
        "max_rss_mb_by_kind": result.peak_rss_mb,
        "orders": sustained.accepted + spike.accepted,
        "errors": sum(_errors(result).values()),
        "errors_by_kind": _errors(result),
        "unfinished": sustained.unfinished + spike.unfinished,
        "lost": result.lost,
        "stuck": result.stuck,
        "consistent": result.consistency.consistent,
        "problems": len(result.consistency.problems),
        "rate": result.plan.rate,
        "duration_s": result.plan.duration,
        "quick": result.plan.quick,
        "code": result.code,
        "targets": {target.key: target.verdict.value for target in targets},
        "targets_met": all_met(targets),
    }


def summary_table(result: BenchResult) -> Table:
    f, m, plan = figures(result), result.measured, result.plan
    table = Table(title="Orders (make bench)" + (" — quick" if plan.quick else ""), show_header=False)
    table.add_column("measure", style="bold")
    table.add_column("value")
    table.add_row("machine", machine())
    table.add_row("code", result.code)
    table.add_row("platform", f"{plan.topology.describe()}; db {result.database}, Redis db {result.redis_db}")
    table.add_row(
        "reference",
        f"{f['reference_tasks_per_s']:,.0f} no-op tasks/s on the saga worker ({m.reference.tasks} tasks, "
        f"published at {m.reference.publish_per_s:,.0f}/s; {f['reference_cpu_ms_per_task']:.2f} ms worker CPU/task)",
    )
    table.add_row(
        "sustained",
        f"target {plan.rate:g}/s for {plan.duration:g}s: sent {f['sent_per_s']:.1f}/s, "
        f"accepted {f['accepted_per_s']:.1f}/s (POST answered)",
    )
    table.add_row("orders/s sustained", f"{f['orders_per_s']:.1f} (ratio to the reference {f['ratio']:.3f})")
    table.add_row("POST → final", latency_text(m.sustained.report.latency))
    table.add_row("POST answered", latency_text(m.sustained.report.post_latency))
    for phase in m.spike.report.phases:
        table.add_row(
            f"spike phase {phase.name}", f"{phase.finished_per_s:.1f}/s finished · " + latency_text(phase.latency)
        )
    table.add_row("after the spike", _recovery_text(m.spike.report))
    table.add_row("CPU per order", cpu_text(m.sustained.cpu, m.sustained.report.finished))
    table.add_row("other CPU", other_cpu_text(m.sustained.cpu))
    table.add_row("PostgreSQL per order", database_text(m.sustained.database, m.sustained.report.finished))
    table.add_row("peak RSS (MB/process)", counts_text(result.peak_rss_mb))
    table.add_row("outcomes", counts_text(dict(result.consistency.by_state.most_common())))
    table.add_row("errors", counts_text(_errors(result)))
    table.add_row("GETs per order", f"{m.sustained.report.gets_per_order:.2f} (sustained; the generator's polling)")
    table.add_row("lost · stuck · unfinished", f"{result.lost} · {result.stuck} · {f['unfinished']}")
    table.add_row("consistency", _consistency_text(result))
    table.add_row("targets", _targets_text(judged(result)))
    return table


VERDICT_STYLE = {Verdict.MET: "green", Verdict.MISSED: "red", Verdict.NOT_MEASURED: "yellow"}


def _targets_text(targets: list[Target]) -> str:
    return "\n".join(
        f"[{VERDICT_STYLE[t.verdict]}]{t.verdict.value}[/{VERDICT_STYLE[t.verdict]}]: {t.goal} ({t.seen})"
        for t in targets
    )


def _recovery_text(report: LoadReport) -> str:
    rule = f"p99 POST → final ≤ {RECOVERY_TARGET_S:g} s in every {RECOVERY_WINDOW_S:g}-s window of orders sent"
    if report.recovered_after_s is None:
        return f"[red]not back within the phase[/red] ({rule}; refused orders count as over)"
    verdict = "green" if report.recovered_after_s <= SPIKE_RECOVERY_S else "red"
    return (
        f"[{verdict}]back {report.recovered_after_s:g} s after the spike[/{verdict}] "
        f"(target ≤ {SPIKE_RECOVERY_S:g} s; {rule}; refused orders count as over)"
    )


def _errors(result: BenchResult) -> dict[str, int]:
    merged = Counter(result.measured.sustained.report.errors)
    merged.update(result.measured.spike.report.errors)
    return dict(merged.most_common())


def _consistency_text(result: BenchResult) -> str:
    report = result.consistency
    if report.consistent:
        return f"[green]every module agrees on {report.orders} orders and their stock; fraud's history too[/green]"
    shown = "\n".join(report.problems[:SHOWN_PROBLEMS])
    return f"[red]{len(report.problems)} problems over {report.orders} orders[/red]\n{shown}"


def profile_table(profile: dict[str, list[tuple[str, float]]], mode: str) -> Table:
    table = Table(title=f"Where the time goes (py-spy, {mode} samples, sustained phase)")
    table.add_column("process: view")
    table.add_column("share of samples · frame")
    for view, rows in profile.items():
        table.add_row(view, "\n".join(f"{share:6.1%}  {frame}" for frame, share in rows))
    return table
