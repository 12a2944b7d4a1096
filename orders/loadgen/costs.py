"""What a phase cost: CPU per order by kind of process, PostgreSQL's work per order, the box's other load."""

from __future__ import annotations

import os

from rich.table import Table

from orders.loadgen.pgstats import DatabaseActivity
from orders.loadgen.resources import APP_KINDS, OTHER, SERVER_KINDS, SHORT_LIVED, CpuUsage

BUSY_BOX_SHARE = 0.1


def per_order_ms(cpu: CpuUsage, finished: int) -> dict[str, float]:
    if not finished:
        return {}
    return {kind: round(1000.0 * seconds / finished, 2) for kind, seconds in cpu.by_kind.items() if kind != OTHER}


def other_load_share(cpu: CpuUsage) -> float:
    """Share of the box's CPU capacity used by processes that are neither the platform nor the generator."""
    capacity = cpu.wall_s * (os.cpu_count() or 1)
    return cpu.other_s / capacity if capacity else 0.0


def cpu_text(cpu: CpuUsage, finished: int) -> str:
    if not finished:
        return "—"
    per_order = per_order_ms(cpu, finished)
    kinds = [kind for kind in (*APP_KINDS, *SERVER_KINDS, SHORT_LIVED) if kind in per_order]
    parts = " · ".join(f"{kind} {per_order[kind]:.1f}" for kind in kinds)
    return (
        f"{1000 * cpu.platform_s / finished:.1f} ms/order incl. PostgreSQL, Redis and short-lived processes "
        f"({1000 * cpu.app_s / finished:.1f} app only): {parts}"
    )


def other_cpu_text(cpu: CpuUsage) -> str:
    share = other_load_share(cpu)
    text = f"generator {cpu.generator_s:.1f} s, other processes {cpu.other_s:.1f} s over {cpu.wall_s:.0f} s"
    if share > BUSY_BOX_SHARE:
        text += f"\n[red]the box was busy with other work ({share:.0%} of its CPU): these figures are pessimistic[/red]"
    return text


def database_text(database: DatabaseActivity, finished: int) -> str:
    per = database.per(finished)
    if not per:
        return "—"
    return (
        f"{per['sessions']:.2f} sessions opened · {per['commits']:.1f} commits · {per['rollbacks']:.2f} rollbacks · "
        f"{per['rows_written']:.1f} rows written (pg_stat_database)"
    )


def costs_table(title: str, cpu: CpuUsage, database: DatabaseActivity, finished: int) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("measure", style="bold")
    table.add_column("value")
    table.add_row("CPU per order", cpu_text(cpu, finished))
    table.add_row("other CPU", other_cpu_text(cpu))
    table.add_row("PostgreSQL per order", database_text(database, finished))
    return table
