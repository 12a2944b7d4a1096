"""Long-running processes freeze their start-up heap, so full collections stay short (config/heap.py)."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator

import pytest
from celery.signals import worker_ready

import config.celery  # noqa: F401 - connects the worker's signal handlers


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()


def test_a_worker_freezes_its_heap_once_ready(unfrozen: None) -> None:
    worker_ready.send(sender=None)

    assert gc.get_freeze_count() > 10_000  # Django, Celery and every app's models


def test_the_web_application_freezes_its_heap_after_loading_its_views(unfrozen: None) -> None:
    import config.wsgi

    importlib.reload(config.wsgi)

    assert gc.get_freeze_count() > 10_000
    assert callable(config.wsgi.application)


def test_a_frozen_heap_leaves_new_garbage_collectable(unfrozen: None) -> None:
    worker_ready.send(sender=None)

    class Node:
        pass

    node = Node()
    node.self = node  # type: ignore[attr-defined] - a cycle only the collector can free
    del node

    assert gc.collect() >= 1
