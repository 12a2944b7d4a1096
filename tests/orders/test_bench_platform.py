"""The bench's platform stops its processes by kind: the web first, before the end-of-run check needs sessions."""

from __future__ import annotations

import sys
from pathlib import Path

from orders.loadgen.processes import Platform, Topology

_SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


class _Sleepers(Platform):
    def commands(self) -> list[tuple[str, str, list[str]]]:
        return [("web", "web", _SLEEP), ("worker", "saga0", _SLEEP), ("relay", "relay", _SLEEP)]


def test_stopping_one_kind_leaves_the_others_running(tmp_path: Path) -> None:
    platform = _Sleepers(Topology(), tmp_path)
    platform.start()
    try:
        web, worker, relay = (child.proc for child in platform.children)

        platform.stop(kinds={"web"})

        assert web.poll() is not None
        assert (worker.poll(), relay.poll()) == (None, None)
        assert [child.kind for child in platform.children] == ["worker", "relay"]
    finally:
        platform.stop()
    assert (worker.poll() is not None, relay.poll() is not None, platform.children) == (True, True, [])
