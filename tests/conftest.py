"""Shared fixtures: API clients, stock, and a running platform (relay + Celery
worker as real subprocesses against the test databases)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from inventory.api import set_stock
from messaging.adapters import breaker_for
from messaging.api import redis_client, set_fault_profile
from messaging.third_party import forget_fault_profiles
from orders.models import RESTING_STATES, Order
from orders.services.clients import api_client_create

ROOT = Path(__file__).resolve().parent.parent
QUEUES = "saga.eu,saga.us,saga.apac,compensation,events,default,batch"


@pytest.fixture(autouse=True)
def _clean_redis() -> Iterator[None]:
    redis_client().flushdb()
    breaker_for.cache_clear()
    forget_fault_profiles()
    yield
    for name in ("payment_gateway", "carrier"):
        set_fault_profile(name)


@dataclass
class ApiCaller:
    client: Client
    token: str
    client_id: uuid.UUID

    def headers(self, **extra: str) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}", **extra}

    def place(self, body: dict[str, Any], *, key: str | None = None, wait: float | None = None, **headers: str):
        extra = {"HTTP_IDEMPOTENCY_KEY": key or str(uuid.uuid4()), **headers}
        if wait:
            extra["HTTP_PREFER"] = f"wait={wait}"
        return self.client.post("/api/v1/orders", body, content_type="application/json", **self.headers(**extra))

    def get(self, path: str):
        return self.client.get(path, **self.headers())


@pytest.fixture
def api_caller(db: None) -> ApiCaller:
    client, token = api_client_create(name=f"client-{uuid.uuid4().hex[:8]}")
    return ApiCaller(Client(), token, client.id)


@pytest.fixture
def other_caller(db: None) -> ApiCaller:
    client, token = api_client_create(name=f"other-{uuid.uuid4().hex[:8]}")
    return ApiCaller(Client(), token, client.id)


@pytest.fixture
def stock(db: None) -> Callable[..., None]:
    def make(sku: str, on_hand: int, *, policy: str = "strict", price: int = 1000) -> None:
        set_stock(sku=sku, on_hand=on_hand, policy=policy, name=sku, prices={"EUR": price, "USD": price})

    return make


def order_body(
    sku: str = "SKU-1",
    quantity: int = 1,
    *,
    token: str = "tok_ok",
    country: str = "DE",
    region: str = "eu",
    currency: str = "EUR",
    customer: str = "cust-1",
) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "region": region,
        "currency": currency,
        "lines": [{"sku": sku, "quantity": quantity}],
        "payment_token": token,
        "shipping_address": {"country": country, "name": "Ada Lovelace", "city": "Berlin"},
    }


def table_counts() -> dict[str, int]:
    """Row count of every table of every module schema (to prove nothing was written)."""
    counts: dict[str, int] = {}
    for alias in settings.DATABASES:
        schema = connections[alias].settings_dict["SCHEMA"]
        if schema == "public":
            continue
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name <> 'django_migrations'",
                [schema],
            )
            for (table,) in cursor.fetchall():
                cursor.execute(f'SELECT count(*) FROM "{table}"')
                counts[f"{schema}.{table}"] = cursor.fetchone()[0]
    return counts


def wait_for_state(
    order_id: str | uuid.UUID, states: set[str] | frozenset[str] = RESTING_STATES, timeout: float = 15.0
) -> str:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = Order.objects.filter(pk=order_id).values_list("state", flat=True).first()
        if state in states:
            return state
        time.sleep(0.02)
    raise AssertionError(f"order {order_id} stuck in {state!r} after {timeout}s")


def _test_database_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    for alias, db in settings.DATABASES.items():
        env[f"DATABASE_URL_{alias.upper()}"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env["REDIS_URL"] = settings.REDIS_URL
    env["TEST_REDIS_URL"] = settings.REDIS_URL
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Platform:
    """Relay and worker processes of the real platform, on the test databases."""

    env: dict[str, str]
    log_dir: Path
    relay: subprocess.Popen | None = None
    worker: subprocess.Popen | None = None

    def _spawn(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        return subprocess.Popen(
            args, cwd=ROOT, env={**self.env, **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT
        )

    def start_relay(self, **extra_env: str) -> subprocess.Popen:
        self.relay = self._spawn("relay", [sys.executable, "manage.py", "relay", "--poll-interval", "0.5"], extra_env)
        return self.relay

    def start_worker(self, *, queues: str = QUEUES, **extra_env: str) -> subprocess.Popen:
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "4",
            "--queues",
            queues,
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
            "--hostname",
            f"test-{uuid.uuid4().hex[:6]}@%h",
        ]
        self.worker = self._spawn("worker", args, extra_env)
        self._await_worker()
        return self.worker

    def _await_worker(self, timeout: float = 60.0) -> None:
        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.worker is not None and self.worker.poll() is None, self.logs("worker")
            # A fresh connection each time: a pooled one may predate a Redis restart.
            with app.connection_for_write() as connection:
                if app.control.ping(timeout=0.5, connection=connection):
                    return
        raise AssertionError("worker did not start:\n" + self.logs("worker"))

    @staticmethod
    def stop(proc: subprocess.Popen | None, *, kill: bool = False) -> None:
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def logs(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def ensure_running(self) -> None:
        if self.relay is None or self.relay.poll() is not None:
            self.start_relay()
        if self.worker is None or self.worker.poll() is not None:
            self.start_worker()


@pytest.fixture(scope="session")
def _platform_processes(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: Any) -> Iterator[Platform]:
    platform = Platform(env=_test_database_env(), log_dir=tmp_path_factory.mktemp("platform"))
    yield platform
    Platform.stop(platform.relay)
    Platform.stop(platform.worker)


@pytest.fixture
def platform(_platform_processes: Platform, transactional_db: None) -> Platform:
    """A running relay and worker; the test's data is committed so they see it."""
    _platform_processes.ensure_running()
    return _platform_processes


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test may touch every module's database unless it says otherwise."""
    for item in items:
        if item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db(databases="__all__"))
    # Tests with live relay and worker processes go last: once started, those
    # processes consume from the broker and would take in-process tests' messages.
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)
