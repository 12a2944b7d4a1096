"""What a process logs at INFO: the platform's own lines, not Celery's per-task echo of them."""

from __future__ import annotations

import logging

from config.logging import CELERY_PER_TASK_LOGGERS, logging_config


def test_celery_s_per_task_lines_are_off_and_the_consumer_s_are_on() -> None:
    for name in CELERY_PER_TASK_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
        assert logging.getLogger(name).isEnabledFor(logging.WARNING)
    for name in ("messaging.consumer", "orders.saga", "celery.worker.consumer"):
        assert logging.getLogger(name).isEnabledFor(logging.INFO)


def test_an_operator_can_bring_them_back() -> None:
    loggers = logging_config(celery_task_level="INFO")["loggers"]
    assert {name: loggers[name]["level"] for name in CELERY_PER_TASK_LOGGERS} == {
        "celery.worker.strategy": "INFO",
        "celery.app.trace": "INFO",
    }
