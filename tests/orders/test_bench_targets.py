"""The bench's verdict on the platform's targets: met, missed, or not measured by a run too small to say."""

from __future__ import annotations

from dataclasses import replace

from orders.loadgen.targets import Load, Verdict, all_met, targets_judged

FULL = Load(
    offered_per_s=120, seconds=60, sent_per_s=120.0, planned=7200, accepted=7200, unfinished=0, lost=0, p99_ms=660.0
)
SPIKE = Load(
    offered_per_s=120,
    seconds=60,
    sent_per_s=120.0,
    planned=7920,
    accepted=7920,
    unfinished=0,
    lost=0,
    p99_ms=1100.0,
    recovered_after_s=0.0,
)
RSS = {"web": 110.4, "worker": 110.5, "postgres": 117.9}


def verdicts(**overrides) -> dict[str, Verdict]:  # type: ignore[no-untyped-def]
    arguments = {
        "sustained": FULL,
        "spike": SPIKE,
        "peak_rss_mb": RSS,
        "lost": 0,
        "stuck": 0,
        "consistent": True,
        **overrides,
    }
    return {target.key: target.verdict for target in targets_judged(**arguments)}


def test_a_full_run_that_kept_pace_meets_every_target() -> None:
    targets = targets_judged(sustained=FULL, spike=SPIKE, peak_rss_mb=RSS, lost=0, stuck=0, consistent=True)

    assert {t.key: t.verdict for t in targets} == {
        "sustained_120_per_s": Verdict.MET,
        "sustained_p99_2s": Verdict.MET,
        "spike_recovered_30s": Verdict.MET,
        "rss_200mb": Verdict.MET,
        "books_agree": Verdict.MET,
    }
    assert all_met(targets)
    assert targets[3].seen == "web 110 MB, worker 110 MB"  # only the processes the target names


def test_a_quick_run_measures_neither_rate_and_so_meets_nothing_it_did_not_measure() -> None:
    quick = replace(FULL, offered_per_s=30, seconds=10, sent_per_s=30.0, planned=300, accepted=300)
    targets = targets_judged(
        sustained=quick, spike=replace(SPIKE, offered_per_s=30), peak_rss_mb=RSS, lost=0, stuck=0, consistent=True
    )

    assert [t.verdict for t in targets] == [
        Verdict.NOT_MEASURED,
        Verdict.NOT_MEASURED,
        Verdict.NOT_MEASURED,
        Verdict.MET,
        Verdict.MET,
    ]
    assert not all_met(targets)


def test_orders_refused_for_good_or_left_unfinished_miss_the_rate_and_its_latency() -> None:
    refused = replace(FULL, accepted=7100)
    unfinished = replace(FULL, unfinished=3)

    assert verdicts(sustained=refused)["sustained_120_per_s"] is Verdict.MISSED
    assert verdicts(sustained=refused)["sustained_p99_2s"] is Verdict.MISSED  # p99 of what finished is not enough
    assert verdicts(sustained=unfinished)["sustained_120_per_s"] is Verdict.MISSED


def test_a_generator_that_could_not_send_the_rate_does_not_count_as_the_rate() -> None:
    assert verdicts(sustained=replace(FULL, sent_per_s=110.0))["sustained_120_per_s"] is Verdict.MISSED
    assert verdicts(sustained=replace(FULL, sent_per_s=119.0))["sustained_120_per_s"] is Verdict.MET


def test_latency_over_two_seconds_misses_only_the_latency_target() -> None:
    slow = verdicts(sustained=replace(FULL, p99_ms=2000.1))

    assert slow["sustained_p99_2s"] is Verdict.MISSED
    assert slow["sustained_120_per_s"] is Verdict.MET


def test_a_spike_that_never_recovers_or_loses_an_order_misses() -> None:
    assert verdicts(spike=replace(SPIKE, recovered_after_s=None))["spike_recovered_30s"] is Verdict.MISSED
    assert verdicts(spike=replace(SPIKE, recovered_after_s=35.0))["spike_recovered_30s"] is Verdict.MISSED
    assert verdicts(spike=replace(SPIKE, recovered_after_s=30.0))["spike_recovered_30s"] is Verdict.MET
    assert verdicts(spike=replace(SPIKE, lost=1))["spike_recovered_30s"] is Verdict.MISSED


def test_a_spike_whose_orders_were_refused_for_good_misses_and_says_how_many() -> None:
    shed = replace(SPIKE, accepted=7881)
    [spike] = [
        t
        for t in targets_judged(sustained=FULL, spike=shed, peak_rss_mb=RSS, lost=0, stuck=0, consistent=True)
        if t.key == "spike_recovered_30s"
    ]

    assert spike.verdict is Verdict.MISSED
    assert spike.seen == (
        "peak 120/s for 60 s, sent at 120.0/s, back after 0 s, accepted 7881 of 7920, unfinished 0, lost 0"
    )


def test_a_full_rate_for_too_short_a_time_is_not_the_target_s_minute() -> None:
    short = replace(FULL, seconds=5, planned=600, accepted=600)

    assert verdicts(sustained=short)["sustained_120_per_s"] is Verdict.NOT_MEASURED
    assert verdicts(sustained=short)["sustained_p99_2s"] is Verdict.NOT_MEASURED
    assert verdicts(spike=replace(SPIKE, seconds=10))["spike_recovered_30s"] is Verdict.NOT_MEASURED


def test_a_spike_the_generator_could_not_send_at_its_peak_rate_misses() -> None:
    assert verdicts(spike=replace(SPIKE, sent_per_s=100.0))["spike_recovered_30s"] is Verdict.MISSED


def test_memory_and_books() -> None:
    assert verdicts(peak_rss_mb={"web": 200.0, "worker": 90.0})["rss_200mb"] is Verdict.MISSED
    assert verdicts(peak_rss_mb={"web": 90.0})["rss_200mb"] is Verdict.NOT_MEASURED
    assert verdicts(peak_rss_mb={"web": 250.0})["rss_200mb"] is Verdict.MISSED  # over is over, one sample or two
    assert verdicts(consistent=False)["books_agree"] is Verdict.MISSED
    assert verdicts(stuck=1)["books_agree"] is Verdict.MISSED
