"""The API's bodies. Plain pydantic models, not ninja's ``Schema``: each body here is a dict (a request's JSON,
or what ``presenters`` builds), and ``Schema`` wraps every instance, nested ones too, in a getter made to read a
Django object's attributes one by one. A lookup of 100 orders (about 400 nested instances) spent most of its
9 ms of the web's CPU in that wrapper."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class ShippingAddressIn(BaseModel):
    country: str = Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 country code")
    name: str | None = Field(default=None, max_length=200)
    line1: str | None = Field(default=None, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)


class OrderLineIn(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=10_000)


class OrderIn(BaseModel):
    customer_id: str = Field(min_length=1, max_length=64)
    region: Literal["eu", "us", "apac"]
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    lines: list[OrderLineIn] = Field(min_length=1, max_length=100)
    payment_token: str = Field(min_length=1, max_length=128)
    shipping_address: ShippingAddressIn


class OrderAccepted(BaseModel):
    id: str
    state: str
    url: str


class OrderLineOut(BaseModel):
    sku: str
    quantity: int
    unit_price_minor: int
    line_total_minor: int


class HistoryOut(BaseModel):
    from_state: str
    to_state: str
    reason: str
    actor: str
    at: datetime


class OrderOut(BaseModel):
    id: str
    state: str
    region: str
    currency: str
    customer_id: str
    lines: list[OrderLineOut]
    subtotal_minor: int
    tax_minor: int
    total_minor: int
    total: str
    failure_reason: str
    created_at: datetime
    history: list[HistoryOut]


# Ids one lookup of several orders takes at most (GET /orders?id=…).
MAX_ORDERS_PER_LOOKUP = 100


class OrdersOut(BaseModel):
    orders: list[OrderOut]
    not_found: list[str]


class StockOut(BaseModel):
    sku: str
    name: str
    policy: str
    on_hand: int
    reserved: int
    available: int
    sold: int


class ErrorBody(BaseModel):
    code: str
    detail: str | list | dict


class ErrorOut(BaseModel):
    error: ErrorBody
