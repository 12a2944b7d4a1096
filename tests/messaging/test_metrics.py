"""/metrics: kernel state read at scrape time, counters from this and other processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from messaging.api import dead_letter_resolve, drain_batch, redis_client
from messaging.models import DeadLetter
from tests.conftest import ROOT, Platform
from tests.messaging.helpers import add_pings, eventually, ping_envelope
from tests.probe.models import ProbeEffect, ProbeOutbox
from tests.probe.tasks import FAIL_KEY, apply_ping

BACKLOG = "messaging_outbox_backlog"
OLDEST_AGE = "messaging_outbox_oldest_age_seconds"
PUBLISHED = "messaging_relay_published_total"
BATCH_SIZE_COUNT = "messaging_relay_batch_size_count"
BATCH_SIZE_SUM = "messaging_relay_batch_size_sum"
BATCH_SECONDS_COUNT = "messaging_relay_batch_seconds_count"
OUTCOMES = "messaging_consumer_outcomes_total"
DEAD_LETTERS_OPEN = "messaging_dead_letters_open"
PROBE_MODULE = ProbeOutbox.objects.db
committed = pytest.mark.django_db(transaction=True, databases="__all__")


@dataclass(frozen=True)
class Scrape:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def counter(self, name: str, **labels: str) -> float:
        """A counter's value; a series not yet created counts as zero."""
        return self.value(name, **labels) or 0.0


def scrape() -> Scrape:
    response = Client().get("/metrics")
    assert response.status_code == 200
    families = text_string_to_metric_families(response.content.decode())
    return Scrape(
        {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples},
    )


@committed
def test_backlog_and_oldest_age_of_committed_rows_per_module() -> None:
    add_pings(3)

    before = scrape()
    assert before.value(BACKLOG, module=PROBE_MODULE) == 3
    oldest = before.value(OLDEST_AGE, module=PROBE_MODULE)
    assert oldest is not None and 0 < oldest < 60
    assert before.value(BACKLOG, module="orders") == 0
    assert before.value(OLDEST_AGE, module="orders") == 0

    drain_batch(ProbeOutbox, 100)

    after = scrape()
    assert after.value(BACKLOG, module=PROBE_MODULE) == 0
    assert after.value(OLDEST_AGE, module=PROBE_MODULE) == 0


def test_published_counter_and_batch_histograms_rise_by_what_was_drained() -> None:
    before = scrape()
    add_pings(4)

    assert drain_batch(ProbeOutbox, 100) == 4

    after = scrape()
    module = {"module": PROBE_MODULE}
    assert after.counter(PUBLISHED, **module) - before.counter(PUBLISHED, **module) == 4
    assert after.counter(BATCH_SIZE_COUNT, **module) - before.counter(BATCH_SIZE_COUNT, **module) == 1
    assert after.counter(BATCH_SIZE_SUM, **module) - before.counter(BATCH_SIZE_SUM, **module) == 4
    assert after.counter(BATCH_SECONDS_COUNT, **module) - before.counter(BATCH_SECONDS_COUNT, **module) == 1


def outcome_deltas(before: Scrape, after: Scrape) -> dict[str, float]:
    outcomes = ("ok", "duplicate", "retried", "dead_lettered")
    return {
        o: after.counter(OUTCOMES, consumer="probe.apply", outcome=o)
        - before.counter(OUTCOMES, consumer="probe.apply", outcome=o)
        for o in outcomes
    }


def test_consumer_outcomes_ok_and_duplicate() -> None:
    envelope = ping_envelope()
    before = scrape()

    apply_ping.apply(args=[envelope])
    apply_ping.apply(args=[envelope])

    assert outcome_deltas(before, scrape()) == {"ok": 1, "duplicate": 1, "retried": 0, "dead_lettered": 0}


def test_consumer_outcomes_retried_then_dead_lettered() -> None:
    redis_client().set(FAIL_KEY, "transient")
    before = scrape()

    apply_ping.apply(args=[ping_envelope()])

    assert outcome_deltas(before, scrape()) == {"ok": 0, "duplicate": 0, "retried": 3, "dead_lettered": 1}


def test_open_dead_letters_per_module_leave_the_gauge_when_resolved() -> None:
    redis_client().set(FAIL_KEY, "permanent")
    assert scrape().value(DEAD_LETTERS_OPEN, module=PROBE_MODULE) == 0

    apply_ping.apply(args=[ping_envelope()])
    apply_ping.apply(args=[ping_envelope()])

    assert scrape().value(DEAD_LETTERS_OPEN, module=PROBE_MODULE) == 2
    assert scrape().value(DEAD_LETTERS_OPEN, module="orders") == 0
    dead_letter_resolve(letter_id=DeadLetter.objects.values_list("pk", flat=True)[0], actor="ops", note="handled")
    assert scrape().value(DEAD_LETTERS_OPEN, module=PROBE_MODULE) == 1


@pytest.fixture
def metrics_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh multiprocess directory that this test's /metrics reads."""
    path = tmp_path / "metrics"
    path.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))
    return path


@pytest.fixture
def metered_env(_platform_processes: Platform, metrics_dir: Path) -> dict[str, str]:
    """Environment for processes that count into ``metrics_dir``; the shared relay and worker stop so none competes."""
    Platform.stop(_platform_processes.relay)
    Platform.stop(_platform_processes.worker)
    return {**_platform_processes.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}


@committed
def test_a_relay_process_counts_into_the_multiprocess_directory(metered_env: dict[str, str]) -> None:
    add_pings(5)

    result = subprocess.run(
        [sys.executable, "manage.py", "relay", "--once"],
        cwd=ROOT,
        env=metered_env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    after = scrape()
    assert after.value(PUBLISHED, module=PROBE_MODULE) == 5
    assert after.value(BATCH_SIZE_COUNT, module=PROBE_MODULE) == 1
    assert after.value(BACKLOG, module=PROBE_MODULE) == 0


@pytest.fixture
def metered_platform(metered_env: dict[str, str], metrics_dir: Path, transactional_db: None) -> Iterator[Platform]:
    """A relay and a worker of this test's own, counting into ``metrics_dir``."""
    platform = Platform(env=metered_env, log_dir=metrics_dir.parent)
    yield platform
    Platform.stop(platform.relay)
    Platform.stop(platform.worker)


def flow_picture(metrics: Scrape) -> dict[str, float | None]:
    return {
        "published": metrics.value(PUBLISHED, module=PROBE_MODULE),
        "ok": metrics.value(OUTCOMES, consumer="probe.apply", outcome="ok"),
        "duplicate": metrics.value(OUTCOMES, consumer="probe.apply", outcome="duplicate"),
        "backlog": metrics.value(BACKLOG, module=PROBE_MODULE),
    }


@pytest.mark.e2e
def test_relay_and_worker_processes_show_in_the_webs_metrics(metered_platform: Platform) -> None:
    metered_platform.start_worker()
    metered_platform.start_relay()

    add_pings(6)

    eventually(lambda: ProbeEffect.objects.count() == 6)
    eventually(lambda: flow_picture(scrape()) == {"published": 6, "ok": 6, "duplicate": None, "backlog": 0}, timeout=5)
