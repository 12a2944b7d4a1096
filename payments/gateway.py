"""The payment gateway port and its fake.

A real adapter (Stripe, Adyen, …) implements ``PaymentGateway``. Every call
carries an idempotency key per (order, operation): a retried call returns the
first answer and never moves money twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from messaging.api import fault_profile, redis_client
from payments.contracts import GatewayUnavailable


@dataclass(frozen=True)
class GatewayResult:
    approved: bool
    reference: str
    decline_code: str = ""


class PaymentGateway(Protocol):
    def authorize(self, *, idempotency_key: str, token: str, amount_minor: int, currency: str) -> GatewayResult: ...
    def capture(
        self, *, idempotency_key: str, authorization_ref: str, amount_minor: int, currency: str
    ) -> GatewayResult: ...
    def void(self, *, idempotency_key: str, authorization_ref: str) -> GatewayResult: ...
    def refund(self, *, idempotency_key: str, capture_ref: str, amount_minor: int, currency: str) -> GatewayResult: ...


class FakePaymentGateway:
    """Behaves like a card gateway: latency, declines and timeouts on demand.

    Tokens: ``tok_ok`` approves, ``tok_declined`` declines,
    ``tok_capture_declined`` authorizes but its capture is refused; anything
    else is an unknown token (declined). Idempotency keys are remembered in Redis for a
    day, as a real gateway remembers them on its side.
    """

    name = "payment_gateway"
    KEY_TTL_S = 86_400

    def _once(self, idempotency_key: str, decide: Callable[[], GatewayResult]) -> GatewayResult:
        profile = fault_profile(self.name)
        profile.wait()
        memo_key = f"fakegw:{idempotency_key}"
        remembered = redis_client().get(memo_key)
        if remembered is not None:
            return GatewayResult(**json.loads(remembered))
        if profile.times_out():
            raise GatewayUnavailable(f"{self.name}: timed out")
        result = decide()
        if not redis_client().set(memo_key, json.dumps(asdict(result)), ex=self.KEY_TTL_S, nx=True):
            # A concurrent call with the same key won: its answer is the answer.
            result = GatewayResult(**json.loads(redis_client().get(memo_key) or "{}"))
        return result

    def authorize(self, *, idempotency_key: str, token: str, amount_minor: int, currency: str) -> GatewayResult:
        def decide() -> GatewayResult:
            if token == "tok_declined":
                return GatewayResult(approved=False, reference="", decline_code="card_declined")
            if token == "tok_capture_declined":
                return GatewayResult(approved=True, reference=f"auth_x{uuid.uuid4().hex[:15]}")
            if token != "tok_ok":
                return GatewayResult(approved=False, reference="", decline_code="invalid_token")
            if fault_profile(self.name).declines():
                return GatewayResult(approved=False, reference="", decline_code="insufficient_funds")
            return GatewayResult(approved=True, reference=f"auth_{uuid.uuid4().hex[:16]}")

        return self._once(idempotency_key, decide)

    def capture(
        self, *, idempotency_key: str, authorization_ref: str, amount_minor: int, currency: str
    ) -> GatewayResult:
        def decide() -> GatewayResult:
            if authorization_ref.startswith("auth_x"):
                # Authorized with tok_capture_declined: the issuer refuses the capture.
                return GatewayResult(approved=False, reference="", decline_code="authorization_expired")
            return GatewayResult(approved=True, reference=f"cap_{uuid.uuid4().hex[:16]}")

        return self._once(idempotency_key, decide)

    def void(self, *, idempotency_key: str, authorization_ref: str) -> GatewayResult:
        return self._once(
            idempotency_key, lambda: GatewayResult(approved=True, reference=f"void_{uuid.uuid4().hex[:16]}")
        )

    def refund(self, *, idempotency_key: str, capture_ref: str, amount_minor: int, currency: str) -> GatewayResult:
        return self._once(
            idempotency_key, lambda: GatewayResult(approved=True, reference=f"ref_{uuid.uuid4().hex[:16]}")
        )


@lru_cache(maxsize=1)
def payment_gateway() -> PaymentGateway:
    return import_string(settings.PAYMENT_GATEWAY)()
