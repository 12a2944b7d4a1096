"""POST /api/v1/orders and GET: idempotency, auth, bad input (saga not running)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime

import psycopg._queries
import pytest
from django.db import OperationalError, connections, transaction
from django.test import Client

from inventory.models import StockItem
from orders.models import IdempotencyRecord, Order, OrderHistory, OrderLine, OrdersOutbox
from orders.saga import saga_run
from orders.services.placement import OrderRequest, order_place
from tests.conftest import ApiCaller, order_body, table_counts
from tests.statements import statements_sent


@pytest.fixture
def sku(stock) -> str:
    stock("SKU-1", 10, price=1250)
    return "SKU-1"


def test_accepts_an_order_in_one_statement_with_its_saga_message(api_caller: ApiCaller, sku: str) -> None:
    with statements_sent() as sent:
        response = api_caller.place(order_body(sku, 2), key="k-1")

    assert response.status_code == 202
    body = response.json()
    order = Order.objects.get(pk=body["id"])
    assert body == {"id": str(order.id), "state": "pending", "url": f"/api/v1/orders/{order.id}"}
    assert response["Location"] == f"/api/v1/orders/{order.id}"
    assert order.subtotal_minor == 2500
    assert order.client_id == api_caller.client_id
    assert [(line.sku, line.quantity, line.unit_price_minor) for line in order.lines.all()] == [("SKU-1", 2, 1250)]
    assert list(OrderHistory.objects.filter(order=order).values_list("from_state", "to_state")) == [("", "pending")]
    message = OrdersOutbox.objects.get()
    assert (message.message_type, message.aggregate_id, message.region) == ("orders.StartSaga", str(order.id), "eu")
    assert message.payload == {"order_id": str(order.id)}
    assert IdempotencyRecord.objects.get(key="k-1").order_id == order.id
    # Idempotency record, order, line, history and message: one statement, no lock, read or transaction.
    placing = [sql for sql in sent if "orders_apiclient" not in sql]  # the client's token looked up first
    assert len(placing) == 1
    assert placing[0].startswith('WITH claimed AS (INSERT INTO "orders_idempotencyrecord"')
    assert message.published_at is None


def test_an_order_of_many_lines_is_converted_for_the_server_once(
    api_caller: ApiCaller,
    stock,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """psycopg keeps a statement's placeholders converted only up to a number of parameters; a placement of
    ten lines (over 80) is kept all the same, so the next POST of ten lines does not convert it again."""
    skus = [f"SKU-{n}" for n in range(10)]
    for sku in skus:
        stock(sku, 10)
    body = order_body()
    body["lines"] = [{"sku": sku, "quantity": 1} for sku in skus]
    api_caller.place(body, key="first")
    converted: list[bytes] = []
    uncached = psycopg._queries._query2pg_nocache  # what psycopg calls for a statement it does not keep

    def spy(query: bytes, encoding: str):  # type: ignore[no-untyped-def]
        converted.append(query)
        return uncached(query, encoding)

    monkeypatch.setattr(psycopg._queries, "_query2pg_nocache", spy)
    with statements_sent() as sent:
        response = api_caller.place(body, key="second")

    assert response.status_code == 202
    placing = [sql for sql in sent if sql.startswith("WITH claimed AS")]
    assert len(placing) == 1 and placing[0].count("%s") > 80
    assert converted == []


def test_same_key_same_body_replays_the_first_answer(api_caller: ApiCaller, sku: str) -> None:
    first = api_caller.place(order_body(sku), key="same")
    second = api_caller.place(order_body(sku), key="same")

    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    assert OrdersOutbox.objects.count() == 1


def test_a_repeat_gets_its_first_answer_even_when_its_sku_is_gone_since(api_caller: ApiCaller, sku: str) -> None:
    first = api_caller.place(order_body(sku), key="kept")
    StockItem.objects.filter(sku=sku).delete()

    again = api_caller.place(order_body(sku), key="kept")
    new = api_caller.place(order_body(sku), key="new")

    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (202, first.json(), "true")
    assert new.status_code == 422  # a new request for it is refused
    assert Order.objects.count() == 1


def test_a_repeat_gets_its_first_answer_while_inventory_is_down(
    api_caller: ApiCaller, sku: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = api_caller.place(order_body(sku), key="kept")

    def inventory_down(**_: object) -> None:
        raise OperationalError("connection to the inventory database failed")

    monkeypatch.setattr("orders.services.placement.price_lines", inventory_down)
    again = api_caller.place(order_body(sku), key="kept")

    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (202, first.json(), "true")
    refused = api_caller.place(order_body(sku), key="new")  # a new order cannot be priced: refused, not accepted
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "database_unavailable")
    assert Order.objects.count() == 1


def test_same_key_different_body_is_refused(api_caller: ApiCaller, sku: str) -> None:
    api_caller.place(order_body(sku, 1), key="same")
    before = table_counts()

    response = api_caller.place(order_body(sku, 2), key="same")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert table_counts() == before


def test_same_key_from_two_clients_are_two_orders(api_caller: ApiCaller, other_caller: ApiCaller, sku: str) -> None:
    a = api_caller.place(order_body(sku), key="shared")
    b = other_caller.place(order_body(sku), key="shared")
    assert a.json()["id"] != b.json()["id"]
    assert Order.objects.count() == 2


def _request_of(body: dict) -> OrderRequest:
    """What the API makes of ``body`` (same fingerprint as a POST of it)."""
    return OrderRequest(
        customer_id=body["customer_id"],
        region=body["region"],
        currency=body["currency"],
        lines=[(line["sku"], line["quantity"]) for line in body["lines"]],
        payment_token=body["payment_token"],
        shipping_address=body["shipping_address"],
    )


def _first_request_held_open(api_caller: ApiCaller, sku: str, *, key: str, then: str) -> tuple[threading.Event, list]:
    """Place an order with ``key`` in a thread whose transaction stays open until released, then commits
    (``then="commit"``) or rolls back; returns the release event and where its placement will be."""
    placed: list = []
    written, release = threading.Event(), threading.Event()

    def first() -> None:
        try:
            with transaction.atomic(using="orders"):
                placed.append(
                    order_place(
                        client_id=api_caller.client_id,
                        idempotency_key=key,
                        request=_request_of(order_body(sku, 1)),
                        correlation_id="first",
                    )
                )
                written.set()
                release.wait(10)
                if then != "commit":
                    raise RuntimeError("the first request fails after writing")
        except RuntimeError:
            pass
        finally:
            written.set()
            connections.close_all()

    threading.Thread(target=first).start()
    assert written.wait(10)
    threading.Timer(0.3, release.set).start()
    return release, placed


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_repeat_while_the_first_request_is_being_written_waits_and_gets_its_answer(
    api_caller: ApiCaller, sku: str
) -> None:
    _, placed = _first_request_held_open(api_caller, sku, key="busy", then="commit")

    started = time.monotonic()
    response = api_caller.place(order_body(sku, 1), key="busy")

    assert time.monotonic() - started >= 0.25  # it waited for the first request to commit
    assert response.status_code == 202
    assert response["Idempotent-Replayed"] == "true"
    assert response.json()["id"] == str(placed[0].order_id)
    assert Order.objects.count() == 1


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_repeat_while_the_first_request_fails_places_the_order_itself(api_caller: ApiCaller, sku: str) -> None:
    _, placed = _first_request_held_open(api_caller, sku, key="busy", then="roll back")

    response = api_caller.place(order_body(sku, 1), key="busy")

    assert response.status_code == 202
    assert not response.has_header("Idempotent-Replayed")
    assert response.json()["id"] != str(placed[0].order_id)
    assert list(Order.objects.values_list("id", flat=True)) == [uuid.UUID(response.json()["id"])]
    assert IdempotencyRecord.objects.get(key="busy").order_id == uuid.UUID(response.json()["id"])


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_concurrent_requests_with_one_key_create_one_order(api_caller: ApiCaller, sku: str) -> None:
    results: list[tuple[int, dict]] = []
    barrier = threading.Barrier(8)

    def post() -> None:
        barrier.wait()
        response = api_caller.place(order_body(sku), key="race")
        results.append((response.status_code, response.json()))
        connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert Order.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1
    order_id = str(Order.objects.get().pk)
    assert [status for status, _ in results] == [202] * 8  # the repeats waited for the first and replayed it
    assert {body["id"] for _, body in results} == {order_id}


def test_get_order_shows_lines_total_and_history(api_caller: ApiCaller, sku: str) -> None:
    order_id = api_caller.place(order_body(sku, 3)).json()["id"]

    body = api_caller.get(f"/api/v1/orders/{order_id}").json()

    assert body["id"] == order_id
    assert body["state"] == "pending"
    assert (body["region"], body["currency"]) == ("eu", "EUR")
    assert body["lines"] == [{"sku": "SKU-1", "quantity": 3, "unit_price_minor": 1250, "line_total_minor": 3750}]
    assert (body["subtotal_minor"], body["tax_minor"], body["total_minor"], body["total"]) == (3750, 0, 3750, "37.50")
    assert [(h["from_state"], h["to_state"]) for h in body["history"]] == [("", "pending")]


def test_get_order_shows_every_line_and_the_whole_history_in_order(api_caller: ApiCaller, stock) -> None:  # type: ignore[no-untyped-def]
    stock("SKU-B", 10, price=200)
    stock("SKU-A", 10, price=105)
    body = order_body("SKU-B", 2)
    body["lines"].append({"sku": "SKU-A", "quantity": 1})
    order_id = api_caller.place(body).json()["id"]
    assert saga_run(order_id=uuid.UUID(order_id)) == "confirmed"

    shown = api_caller.get(f"/api/v1/orders/{order_id}").json()

    assert shown["lines"] == [
        {"sku": "SKU-B", "quantity": 2, "unit_price_minor": 200, "line_total_minor": 400},
        {"sku": "SKU-A", "quantity": 1, "unit_price_minor": 105, "line_total_minor": 105},
    ]
    stored = OrderHistory.objects.filter(order_id=order_id).order_by("id")
    assert [(h["from_state"], h["to_state"], h["reason"], h["actor"]) for h in shown["history"]] == [
        (h.from_state, h.to_state, h.reason, h.actor) for h in stored
    ]
    # The API shows times to the millisecond.
    assert [datetime.fromisoformat(h["at"].replace("Z", "+00:00")) for h in shown["history"]] == [
        h.created_at.replace(microsecond=h.created_at.microsecond // 1000 * 1000) for h in stored
    ]
    assert shown["history"][-1]["to_state"] == "confirmed"


def test_another_clients_order_is_not_found(api_caller: ApiCaller, other_caller: ApiCaller, sku: str) -> None:
    order_id = api_caller.place(order_body(sku)).json()["id"]

    response = other_caller.get(f"/api/v1/orders/{order_id}")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "detail": "order not found"}}


def test_several_orders_are_read_in_one_statement_as_each_is_shown_alone(
    api_caller: ApiCaller, other_caller: ApiCaller, sku: str
) -> None:
    mine = [api_caller.place(order_body(sku, n)).json()["id"] for n in (1, 2, 3)]
    assert saga_run(order_id=uuid.UUID(mine[1])) == "confirmed"
    theirs = other_caller.place(order_body(sku)).json()["id"]
    unknown = str(uuid.uuid4())
    asked = [mine[2], unknown, mine[0], theirs, mine[1], mine[2]]

    with statements_sent() as sent:
        response = api_caller.get("/api/v1/orders?" + "&".join(f"id={order_id}" for order_id in asked))

    assert response.status_code == 200
    body = response.json()
    # In the order asked for, each once; another client's order is not found, as it is alone.
    assert [order["id"] for order in body["orders"]] == [mine[2], mine[0], mine[1]]
    assert body["not_found"] == [unknown, theirs]
    alone = [api_caller.get(f"/api/v1/orders/{order_id}").json() for order_id in (mine[2], mine[0], mine[1])]
    assert body["orders"] == alone
    assert body["orders"][2]["state"] == "confirmed"
    assert len([sql for sql in sent if "orders_apiclient" not in sql]) == 1


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("", "missing"),
        ("?id=not-a-uuid", "uuid_parsing"),
        ("?" + "&".join(f"id={uuid.uuid4()}" for _ in range(101)), "too_long"),
    ],
)
def test_a_lookup_of_no_ids_bad_ids_or_too_many_is_a_clear_422(api_caller: ApiCaller, query: str, problem: str) -> None:
    response = api_caller.get(f"/api/v1/orders{query}")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert [field["type"] for field in error["detail"]] == [problem]


def test_unknown_order_is_not_found(api_caller: ApiCaller) -> None:
    assert api_caller.get(f"/api/v1/orders/{uuid.uuid4()}").status_code == 404


def test_inventory_endpoint(api_caller: ApiCaller, sku: str) -> None:
    body = api_caller.get("/api/v1/inventory/SKU-1").json()
    assert (body["on_hand"], body["reserved"], body["available"], body["policy"]) == (10, 0, 10, "strict")
    assert api_caller.get("/api/v1/inventory/NOPE").status_code == 404


def _bad(field: str, value: object) -> dict:
    body = order_body("SKU-1")
    body[field] = value
    return body


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (_bad("lines", [{"sku": "NOPE", "quantity": 1}]), 422, "unknown_sku"),
        (_bad("lines", [{"sku": "SKU-1", "quantity": 0}]), 422, "invalid_request"),
        (_bad("lines", [{"sku": "SKU-1", "quantity": -3}]), 422, "invalid_request"),
        (_bad("lines", []), 422, "invalid_request"),
        (_bad("region", "mars"), 422, "invalid_request"),
        (_bad("currency", "GBP"), 422, "no_price"),
        (_bad("currency", "euro"), 422, "invalid_request"),
        (_bad("shipping_address", {}), 422, "invalid_request"),
        ({k: v for k, v in order_body("SKU-1").items() if k != "customer_id"}, 422, "invalid_request"),
        ({k: v for k, v in order_body("SKU-1").items() if k != "payment_token"}, 422, "invalid_request"),
    ],
)
def test_bad_input_gets_a_clear_error_and_writes_nothing(
    api_caller: ApiCaller, sku: str, body: dict, status: int, code: str
) -> None:
    before = table_counts()

    response = api_caller.place(body)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert table_counts() == before


def test_malformed_json_is_400_and_writes_nothing(api_caller: ApiCaller, sku: str) -> None:
    before = table_counts()
    response = api_caller.client.post(
        "/api/v1/orders",
        "{not json",
        content_type="application/json",
        **api_caller.headers(HTTP_IDEMPOTENCY_KEY="x"),
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert table_counts() == before


def test_missing_idempotency_key_is_400_and_writes_nothing(api_caller: ApiCaller, sku: str) -> None:
    before = table_counts()
    response = api_caller.client.post(
        "/api/v1/orders", json.dumps(order_body(sku)), content_type="application/json", **api_caller.headers()
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["detail"]
    assert table_counts() == before


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic abc", "Bearer "])
def test_missing_or_bad_token_is_401_and_writes_nothing(sku: str, authorization: str | None) -> None:
    before = table_counts()
    headers = {"HTTP_IDEMPOTENCY_KEY": "k"}
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization
    response = Client().post("/api/v1/orders", order_body(sku), content_type="application/json", **headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert table_counts() == before
    assert OrderLine.objects.count() == 0


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_database_that_refuses_sessions_gets_503_with_retry_after_and_writes_nothing(
    api_caller: ApiCaller, sku: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Found under load: with more workers than the server's max_connections, a POST was answered 500."""
    orders_db = connections["orders"]
    port = orders_db.settings_dict["PORT"]
    orders_db.close()
    orders_db.settings_dict["PORT"] = "1"  # nothing listens there: a real connection refusal
    try:
        response = api_caller.place(order_body(sku, 1), key="refused")
    finally:
        orders_db.close()
        orders_db.settings_dict["PORT"] = port

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "database_unavailable"
    assert [(r.name, r.levelname) for r in caplog.records if r.name in {"orders.http", "django.request"}] == [
        ("orders.http", "WARNING")
    ]
    assert not Order.objects.exists()
    assert api_caller.place(order_body(sku, 1), key="refused").status_code == 202
