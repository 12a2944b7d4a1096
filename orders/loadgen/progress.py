"""A live progress bar of a load run (rich)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orders.loadgen.records import Tally
from orders.loadgen.runner import Progress as ProgressCallback

LOG_WIDTH = 120


def output_console() -> Console:
    """The terminal's width on a terminal; 120 columns into a file or pipe."""
    console = Console()
    return console if console.is_terminal else Console(width=LOG_WIDTH)


@contextmanager
def live_progress(console: Console, description: str) -> Iterator[ProgressCallback]:
    columns = (
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("finished · sent {task.fields[sent]} · accepted {task.fields[accepted]}"),
        TextColumn("· in flight {task.fields[in_flight]}"),
        TextColumn("· errors {task.fields[errors]} · [cyan]{task.fields[phase]}[/cyan]"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task_id = bar.add_task(description, total=None, sent=0, accepted=0, in_flight=0, errors=0, phase="")

        def update(tally: Tally, phase: str) -> None:
            bar.update(
                task_id,
                total=tally.planned or None,
                completed=tally.finished,
                sent=tally.sent,
                accepted=tally.accepted,
                in_flight=tally.in_flight,
                errors=sum(tally.errors.values()),
                phase=phase,
            )

        yield update
