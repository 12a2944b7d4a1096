"""Sampling profiles of the platform's processes during a phase (py-spy, when installed).

py-spy is an investigation tool, not a dependency: ``--profile DIR`` refuses
to start without it. In ``cpu`` mode only the thread holding the GIL is
sampled (``--gil``): the samples are the process's Python CPU time. In
``wall`` mode every busy thread is sampled, waits on PostgreSQL and Redis
included: where a task's time goes. Each process gets a raw (collapsed-stack)
file; the summary names where the samples end (by package and by function)
and the innermost function of the project's own code on each stack (what
made the library calls).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil

from orders.loadgen.processes import Platform

PROFILED_KINDS = ("web", "worker", "relay")
PROJECT_PACKAGES = frozenset(
    {"config", "messaging", "orders", "inventory", "payments", "fraud", "compliance", "shipping"}
)
SAMPLE_RATE = 100
TOP = 15
CPU = "cpu"
WALL = "wall"


class ProfilerMissing(RuntimeError):
    """py-spy is not installed."""


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise ProfilerMissing("--profile needs py-spy: .venv/bin/pip install py-spy (not a project dependency)")
    return found


def _targets(platform: Platform) -> list[tuple[str, int]]:
    targets = []
    for child in platform.children:
        if child.kind not in PROFILED_KINDS:
            continue
        workers = psutil.Process(child.proc.pid).children() if child.kind == "web" else []
        targets += [(child.kind, proc.pid) for proc in workers] or [(child.kind, child.proc.pid)]
    return targets


def function_of(frame: str) -> str:
    """``func (pkg/mod.py:12)`` → ``func (pkg/mod.py)``: one row per function, whatever the line."""
    return f"{frame.rpartition(' (')[0]} ({frame_path(frame)})"


def frame_path(frame: str) -> str:
    """``func (pkg/mod.py:12)`` → ``pkg/mod.py``."""
    return frame.rpartition(" (")[2].rstrip(")").rsplit(":", 1)[0]


def is_project(frame: str) -> bool:
    return frame_path(frame).split("/", 1)[0] in PROJECT_PACKAGES


def frame_origin(frame: str) -> str:
    """Where a frame's code lives: a project module, a library's subpackage, or the standard library."""
    parts = frame_path(frame).removesuffix(".py").split("/")
    if parts[0] in PROJECT_PACKAGES:
        return ".".join(parts)
    if parts[0] in sys.stdlib_module_names:
        return f"stdlib {parts[0]}"
    return ".".join(parts[:2])


def _stacks(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";"), int(count)))
    return stacks


def summarize(paths: list[Path]) -> dict[str, list[tuple[str, float]]]:
    """Share of samples by leaf frame, by leaf origin, and by the innermost project frame on the stack."""
    leaf: Counter[str] = Counter()
    origin: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for path in paths:
        for frames, count in _stacks(path):
            leaf[function_of(frames[-1])] += count
            origin[frame_origin(frames[-1])] += count
            project = [frame for frame in frames if is_project(frame)]
            own[function_of(project[-1]) if project else "(no project frame)"] += count
    total = sum(leaf.values()) or 1
    return {
        name: [(key, round(count / total, 4)) for key, count in counter.most_common(TOP)]
        for name, counter in (("leaf package", origin), ("leaf function", leaf), ("innermost project function", own))
    }


class Profiler:
    def __init__(self, platform: Platform, out_dir: Path, *, seconds: float, mode: str = CPU) -> None:
        self.platform = platform
        self.out_dir = out_dir
        self.seconds = seconds
        self.mode = mode
        self._procs: list[subprocess.Popen[bytes]] = []
        self._outputs: dict[str, list[Path]] = {}

    def start(self) -> None:
        binary = py_spy()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for kind, pid in _targets(self.platform):
            output = self.out_dir / f"{kind}-{pid}-{self.mode}.txt"
            args = [binary, "record", "--pid", str(pid), "--duration", str(int(self.seconds)), "--rate"]
            args += [str(SAMPLE_RATE), "--format", "raw", "--output", str(output), "--nonblocking"]
            args += ["--gil"] if self.mode == CPU else []
            self._procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # noqa: S603
            self._outputs.setdefault(kind, []).append(output)

    def finish(self) -> None:
        for proc in self._procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait()

    def summary(self) -> dict[str, list[tuple[str, float]]]:
        result = {}
        for kind, paths in self._outputs.items():
            existing = [path for path in paths if path.exists()]
            for view, rows in summarize(existing).items():
                result[f"{kind}: {view}"] = rows
        return result
