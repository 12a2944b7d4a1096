"""Admission control: refuse work with 503 before a backlog tips the platform over (DESIGN.md §5).

The pressure signal is the saga's lag in a region, in seconds: how long the
oldest ``StartSaga`` still waiting in that region's queue has waited, or, if
longer, how long the queue would take to drain (the age alone reacts too late
when orders arrive much faster than they are served: by the time the oldest has
waited 10 s, minutes of work may be queued behind it). The drain rate is
measured: the workers count what they take off each queue (messaging/drain.py),
and each process reads the region's count with its queue, over the last
``ADMISSION_DRAIN_WINDOW_S``. ``ADMISSION_SAGA_RATE_PER_S`` is the least rate
assumed before a rate is measured, and while a queue that ran dry in the window
drains slower (its rate is only what arrived). A queue that held messages at
every reading of the window (five at least) while its counter moved drained as
fast as the workers could take it: its rate is read as measured, down to one a
second (a slow machine). A counter that stood still says nothing: workers down
show in the oldest message's age. New orders of a
region are refused while its lag exceeds ``ADMISSION_ORDER_LAG_S``: an order
accepted into a longer queue could not finish in time, and accepting it would
only make the queue longer. A relay that is behind does not count: that means
the broker is down, and the outbox is there to keep accepting orders then; a
broker that cannot be read counts as no lag, for the same reason. Low-priority
reads (stock levels) are refused
earlier, at ``ADMISSION_READ_LAG_S`` in any region, to leave the web tier to
orders. Reading an order, cancelling one and carrier events are never shed.
Each process reads the lag at most every ``ADMISSION_CHECK_EVERY_S``.

A queue's length shows an admitted order only once the relay has published its
``StartSaga``, and a process admits on its last reading until the next: under
a wave of retries a region's queue grew to twice the threshold's worth between
readings. So while a region's queue is busy (``gate.BUSY_WITHIN_S``), orders
on their way count as waiting, shown there yet or not: this process's own,
from their admission until their request is answered, and once placed (a
``202`` that is not a repeat) until its next reading; and every process's
placed orders of about the last ``IN_FLIGHT_S``, which each announces at its
next reading, in the same round trip (``queue_waits(announce=…)``): in all, an
order placed counts for 0.25-0.45 s. A request that authentication or
validation refuses, or a repeat, counts for nothing once it is answered.

A refusal must cost far less than an acceptance, or shedding only moves the
overload to the web tier (measured: a 503 given after authentication and body
validation cost about as much CPU as a 202). ``AdmissionGate``
(orders/http/admission_gate.py) therefore decides before anything else runs,
from the body's ``region`` alone.
"""

from __future__ import annotations

from orders.admission.gate import (
    BUSY_WITHIN_S,
    Overloaded,
    admit_order,
    admit_orders_somewhere,
    admit_read,
    forget_lag,
    order_answered,
    order_placed,
    saga_lag_s,
)
from orders.admission.on_their_way import OnTheirWay, Ticket
from orders.admission.readings import IN_FLIGHT_S, Announcements, Drain, DrainRates

__all__ = [
    "BUSY_WITHIN_S",
    "IN_FLIGHT_S",
    "Announcements",
    "Drain",
    "DrainRates",
    "OnTheirWay",
    "Overloaded",
    "Ticket",
    "admit_order",
    "admit_orders_somewhere",
    "admit_read",
    "forget_lag",
    "order_answered",
    "order_placed",
    "saga_lag_s",
]
