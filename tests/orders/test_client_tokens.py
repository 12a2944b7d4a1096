"""Bearer tokens are looked up once per process and forgotten when their client changes."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from orders.client_tokens import active_client_for_token, forget_clients
from orders.models import ApiClient
from orders.services.clients import api_client_create, api_client_rotate


@pytest.fixture(autouse=True)
def _forget() -> None:
    forget_clients()


def test_a_known_token_is_looked_up_once(django_assert_num_queries) -> None:
    client, token = api_client_create(name="cached")

    with django_assert_num_queries(1, using="orders"):
        assert active_client_for_token(token) == client
        assert active_client_for_token(token) == client


def test_an_unknown_token_is_looked_up_every_time(django_assert_num_queries) -> None:
    with django_assert_num_queries(2, using="orders"):
        assert active_client_for_token("opk_nobody") is None
        assert active_client_for_token("opk_nobody") is None


def test_deactivating_a_client_here_takes_effect_at_once() -> None:
    client, token = api_client_create(name="leaving")
    assert active_client_for_token(token) == client

    client.is_active = False
    client.save(update_fields=["is_active"])

    assert active_client_for_token(token) is None


def test_a_rotated_token_stops_working_at_once() -> None:
    _client, old = api_client_create(name="rotating")
    assert active_client_for_token(old) is not None

    _client, new = api_client_rotate(name="rotating")

    assert active_client_for_token(old) is None
    assert active_client_for_token(new) is not None


@override_settings(API_CLIENT_CACHE_S=0.2)
def test_a_change_made_by_another_process_takes_effect_within_the_cache_time() -> None:
    client, token = api_client_create(name="elsewhere")
    assert active_client_for_token(token) == client

    ApiClient.objects.filter(pk=client.pk).update(is_active=False)  # no signal reaches this process

    assert active_client_for_token(token) == client
    time.sleep(0.25)
    assert active_client_for_token(token) is None


def test_a_deactivated_client_gets_401(api_caller) -> None:
    assert api_caller.get("/api/v1/inventory/NOPE").status_code != 401

    ApiClient.objects.filter(pk=api_caller.client_id).get().delete()

    response = api_caller.get("/api/v1/inventory/NOPE")
    assert response.status_code == 401
