"""The bench's costs per order: what the saga workers took off their queues, beside the CPU."""

from __future__ import annotations

from rich.console import Console

from messaging.api import redis_client
from messaging.drain import taken_key
from orders.loadgen.costs import costs_table
from orders.loadgen.pgstats import DatabaseActivity, saga_messages_taken
from orders.loadgen.resources import CpuUsage


def test_the_saga_messages_taken_are_those_of_every_region_s_saga_queue() -> None:
    redis_client().incrby(taken_key("saga.eu"), 30)
    redis_client().incrby(taken_key("saga.apac"), 5)
    redis_client().incrby(taken_key("compensation"), 7)  # not a saga queue

    assert saga_messages_taken() == 35


def test_the_costs_say_how_many_saga_messages_an_order_took() -> None:
    console = Console(width=200, record=True)

    console.print(costs_table("sustained: costs", CpuUsage(60.0, {"web": 12.0}, 3.0), DatabaseActivity(), 200, 50))

    assert "saga messages per order │ 0.25" in console.export_text()
