"""Structured logs: one JSON object per line, carrying the correlation id,
order id, saga step and message id bound in context (structlog contextvars).

Django's, Celery's and our own stdlib loggers all go through the same
formatter, so every line a process writes has the same shape.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def structured_formatter(fmt: str = "json") -> logging.Formatter:
    """The formatter every handler uses: stdlib records and structlog events alike."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*SHARED_PROCESSORS, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


# Celery's own line for every task received and every task succeeded: two lines per message that repeat
# the consumer's (which carries the message id, order and correlation id), 4 of a worker's 7 lines per
# order. Failures and retries are logged by the consumer at WARNING and above, and by Celery at ERROR.
CELERY_PER_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def logging_config(*, level: str = "INFO", fmt: str = "json", celery_task_level: str = "WARNING") -> dict[str, Any]:
    structlog.configure(
        processors=[*SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": structured_formatter, "fmt": fmt}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO"},
            "celery": {"level": level},
            **{name: {"level": celery_task_level} for name in CELERY_PER_TASK_LOGGERS},
        },
    }
