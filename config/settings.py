"""Settings, driven by the environment with local defaults."""

from __future__ import annotations

import os
from pathlib import Path

from kombu import Queue

from config.database import database_settings
from config.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "django_fsm",
    "messaging",
    "compliance",
    "fraud",
    "inventory",
    "payments",
    "shipping",
    "orders",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "messaging.middleware.RequestContextMiddleware",
    "orders.http.admission_gate.AdmissionGate",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = database_settings()
DATABASE_ROUTERS = ["config.routers.ModuleRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".staticfiles"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# --- Celery (DESIGN.md §4): late acks, no loss on worker death, prefetch 1.
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT = "messaging.broker:Transport"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged message after the visibility timeout;
# every countdown must stay below it (enforced by messaging.retries).
CELERY_VISIBILITY_TIMEOUT_S = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT_S", "3600"))
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT_S}
CELERY_TASK_DEFAULT_QUEUE = "default"
REGIONS = ("eu", "us", "apac")
CELERY_TASK_QUEUES = [
    Queue("default"),
    *[Queue(f"saga.{region}") for region in REGIONS],
    Queue("compensation"),
    Queue("events"),
    Queue("batch"),
]
# The relay benchmark's plain-Celery reference task has a queue of its own.
CELERY_TASK_ROUTES = {"messaging.bench_noop": {"queue": "bench"}}
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "expire-reservations": {"task": "inventory.expire_reservations", "schedule": 30.0, "options": {"queue": "batch"}},
    "settle-eventual-sales": {
        "task": "inventory.settle_eventual_sales",
        "schedule": 5.0,
        "options": {"queue": "batch"},
    },
    "recover-sagas": {"task": "orders.recover_sagas", "schedule": 30.0, "options": {"queue": "batch"}},
    "expire-fraud-reviews": {"task": "orders.expire_reviews", "schedule": 60.0, "options": {"queue": "batch"}},
    "reconcile": {
        "task": "orders.reconcile",
        "schedule": float(os.environ.get("RECONCILIATION_INTERVAL_S", "900")),
        "options": {"queue": "batch"},
    },
}

# Seconds a process remembers which client a bearer token belongs to (0: look it up on every request).
API_CLIENT_CACHE_S = float(os.environ.get("API_CLIENT_CACHE_S", "10"))

# Admission control (orders/admission/): shed new orders of a region whose saga is this many seconds
# behind, and low-priority reads earlier; the lag is read at most every ADMISSION_CHECK_EVERY_S.
# 1.5 s: the wait that leaves an accepted order its 2 s once its saga runs (a few hundred ms under load). At
# 10 s p99 never came back within 2 s in the 40 s after a 10x spike; at 3 s, once the wait was measured rather
# than guessed from a constant drain rate (below), accepted orders queued 3 s and finished within 4.7 s at p99,
# against 2.3-2.6 s at 1.5 (docs/performance.md, 7 Dec). Stock reads pause earlier.
ADMISSION_ORDER_LAG_S = float(os.environ.get("ADMISSION_ORDER_LAG_S", "1.5"))
ADMISSION_READ_LAG_S = float(os.environ.get("ADMISSION_READ_LAG_S", "1"))
# 0.1 s: between two readings a process admits on the last one, and refused clients come back together after
# Retry-After; at 0.5 s such a wave filled a region's queue well past the threshold before a reading showed it
# (accepted orders' p99 4.1-4.8 s at 120/s offered on a box that did 60-70/s, against 2.7-3.7 s at 0.1 s;
# docs/performance.md, 7 Dec, 22:52). A reading is one Redis round trip for all regions, 0.46 ms of a web
# process's CPU on that box (one command more per queue since 8 Dec): ten a second cost each web process under
# 0.5 % of a core, and only while requests come.
# While a region's queue is busy (seen holding a reading interval's work within the last second), orders on their
# way to it count as queued (orders/admission/): this process's from their admission until the next reading after
# they were placed, every process's from the reading that announced them. At 0.1 s alone, accepted orders
# still waited up to twice the threshold under a wave of retries (docs/performance.md, 8 Dec).
ADMISSION_CHECK_EVERY_S = float(os.environ.get("ADMISSION_CHECK_EVERY_S", "0.1"))
# A region's queue turns into seconds of wait at the rate the workers were seen to take its messages over the last
# ADMISSION_DRAIN_WINDOW_S (messaging/drain.py), and at least ADMISSION_SAGA_RATE_PER_S sagas a second: the rate
# assumed before one is measured and while a queue that ran dry drains slower (its rate is only what arrived); a
# queue that held messages at every reading (five at least) while its counter moved is read at its measured rate,
# down to one a second. One worker serves the
# three regions, each taking a share of its rate. As a constant
# the rate fit one box on one day: at 10 the gate refused orders whose wait would have been under a second (p99
# from the first POST 5.4 s at 120/s; docs/performance.md, 3 Dec, 16:30), and at 30 eu, half the orders and
# draining at ~60/s, was read as twice as far behind as it was (7 Dec).
ADMISSION_SAGA_RATE_PER_S = float(os.environ.get("ADMISSION_SAGA_RATE_PER_S", "30"))
ADMISSION_DRAIN_WINDOW_S = float(os.environ.get("ADMISSION_DRAIN_WINDOW_S", "5"))

# --- Messaging kernel
MESSAGING_RELAY_BATCH_SIZE = int(os.environ.get("MESSAGING_RELAY_BATCH_SIZE", "500"))
MESSAGING_RELAY_POLL_INTERVAL_S = float(os.environ.get("MESSAGING_RELAY_POLL_INTERVAL_S", "1.0"))
# While notifications keep coming the relay claims at most once per this many ms, so that the rows committed
# meanwhile go out in one claim and broker round trip: under load a message waits up to this much longer in its
# outbox; the first after a quiet spell goes at once. 0: a claim per notification.
MESSAGING_RELAY_GATHER_MS = float(os.environ.get("MESSAGING_RELAY_GATHER_MS", "50"))
# One log line per published message (with its correlation id); off for benchmarks.
MESSAGING_RELAY_LOG_EACH = env_bool("MESSAGING_RELAY_LOG_EACH", True)
# Degradation switch (DESIGN.md §5): while the oldest message waiting in a critical queue is older than
# MESSAGING_HOLD_EVENTS_LAG_S, the relay keeps messages whose every consumer is on a non-critical queue in their
# outbox, and lets them go (oldest first, at most MESSAGING_HELD_RELEASE_PER_S) once that lag is under half of it.
MESSAGING_HOLD_EVENTS = env_bool("MESSAGING_HOLD_EVENTS", True)
MESSAGING_HOLD_EVENTS_LAG_S = float(os.environ.get("MESSAGING_HOLD_EVENTS_LAG_S", "1"))
# Held rows let go per second once the saga has caught up: bounded, so that the release does not put it behind
# again (each row is a task of its consumer).
MESSAGING_HELD_RELEASE_PER_S = float(os.environ.get("MESSAGING_HELD_RELEASE_PER_S", "50"))
# Messages whose every consumer is a batch consumer on a non-critical queue are gathered: held always, and let go
# at most every MESSAGING_HELD_RELEASE_EVERY_S as messages of many envelopes (messaging.event_hold), read by every
# process that writes an outbox and by the relay. While every holdable type is gathered, the release rate is
# MESSAGING_GATHERED_RELEASE_PER_S: above the events' rate at the peak (one per order at 120 orders/s), or held
# rows would pile up; at 100 rows to a task, 500/s costs the workers five tasks a second.
MESSAGING_GATHER_EVENTS = env_bool("MESSAGING_GATHER_EVENTS", True)
MESSAGING_HELD_RELEASE_EVERY_S = float(os.environ.get("MESSAGING_HELD_RELEASE_EVERY_S", "0.5"))
MESSAGING_GATHERED_RELEASE_PER_S = float(os.environ.get("MESSAGING_GATHERED_RELEASE_PER_S", "500"))
MESSAGING_HOLD_CHECK_EVERY_S = float(os.environ.get("MESSAGING_HOLD_CHECK_EVERY_S", "0.5"))
# A row held longer than this is reported by reconciliation as stalled (and released by `reconcile --fix`).
MESSAGING_HELD_STALE_AFTER_S = float(os.environ.get("MESSAGING_HELD_STALE_AFTER_S", "900"))
MESSAGING_CRITICAL_QUEUES = (*(f"saga.{region}" for region in REGIONS), "compensation")
MESSAGING_NONCRITICAL_QUEUES = ("events",)
MESSAGING_MAX_RETRIES = int(os.environ.get("MESSAGING_MAX_RETRIES", "8"))
MESSAGING_RETRY_BASE_S = float(os.environ.get("MESSAGING_RETRY_BASE_S", "0.5"))
MESSAGING_RETRY_MAX_S = float(os.environ.get("MESSAGING_RETRY_MAX_S", "300"))

# --- Business rules
REGION_COUNTRIES = {
    "eu": ["AT", "BE", "DE", "DK", "ES", "FI", "FR", "GR", "IE", "IT", "NL", "PL", "PT", "SE"],
    "us": ["US", "CA", "MX"],
    "apac": ["AU", "CN", "HK", "IN", "JP", "KR", "NZ", "SG", "TW"],
}
COMPLIANCE_DENIED_COUNTRIES = env_list("COMPLIANCE_DENIED_COUNTRIES", "KP,IR,SY,CU")
# Tax in basis points of the subtotal, per region.
TAX_RATES_BP = {"eu": 2000, "us": 700, "apac": 1000}
ORDER_SAGA_DEADLINE_S = int(os.environ.get("ORDER_SAGA_DEADLINE_S", "900"))
# A saga that has not moved for this long is resumed (or compensated) by recovery.
SAGA_STALE_AFTER_S = int(os.environ.get("SAGA_STALE_AFTER_S", "60"))
# Retries of a paused saga; its deadline, not this, decides when it gives up.
SAGA_MAX_RETRIES = int(os.environ.get("SAGA_MAX_RETRIES", "30"))
FRAUD_REVIEW_TIMEOUT_S = int(os.environ.get("FRAUD_REVIEW_TIMEOUT_S", str(24 * 3600)))
RESERVATION_TTL_S = int(os.environ.get("RESERVATION_TTL_S", "1800"))
ORDER_MAX_WAIT_S = 10.0
# Reconciliation (orders/reconciliation): the periodic run looks at orders placed in the last window,
# reports outbox rows unpublished for longer than the threshold, and repairs only when told to.
RECONCILIATION_WINDOW_S = int(os.environ.get("RECONCILIATION_WINDOW_S", str(2 * 24 * 3600)))
RECONCILIATION_OUTBOX_STALE_S = int(os.environ.get("RECONCILIATION_OUTBOX_STALE_S", "300"))
RECONCILIATION_FIX = env_bool("RECONCILIATION_FIX", False)

LOGGING = logging_config(
    level=os.environ.get("LOG_LEVEL", "INFO"),
    fmt=os.environ.get("LOG_FORMAT", "json"),
    celery_task_level=os.environ.get("CELERY_TASK_LOG_LEVEL", "WARNING"),
)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Tracing (OpenTelemetry): off unless OTEL_TRACES=console or otlp.
OTEL_TRACES = os.environ.get("OTEL_TRACES", "off")
OTEL_SERVICE_NAME = os.environ.get("OTEL_SERVICE_NAME", "order-platform")

# --- Third-party adapters (fakes here; a real adapter is a settings change)
PAYMENT_GATEWAY = os.environ.get("PAYMENT_GATEWAY", "payments.gateway.FakePaymentGateway")
SHIPPING_CARRIER = os.environ.get("SHIPPING_CARRIER", "shipping.carrier.FakeCarrier")
FAKE_THIRD_PARTIES = {
    "payment_gateway": {"latency_ms": float(os.environ.get("FAKE_GATEWAY_LATENCY_MS", "5"))},
    "carrier": {"latency_ms": float(os.environ.get("FAKE_CARRIER_LATENCY_MS", "5"))},
}
# Circuit breakers per adapter: (failures before opening, seconds before a trial call).
CIRCUIT_BREAKER = {"default": (5, 30.0), "payment_gateway": (5, 15.0), "carrier": (5, 30.0)}
# Destinations the (fake) carrier refuses: a business failure after payment.
CARRIER_UNSERVICEABLE_COUNTRIES = env_list("CARRIER_UNSERVICEABLE_COUNTRIES", "AQ")
