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
        """The first answer given to ``idempotency_key``, else ``decide()``'s, remembered. One round trip:
        ``SET NX GET`` stores the answer unless one is there, and returns the one that is."""
        profile = fault_profile(self.name)
        profile.wait()
        memo_key = f"fakegw:{idempotency_key}"
        if profile.times_out():
            remembered = redis_client().get(memo_key)  # a call made before is answered all the same
            if remembered is None:
                raise GatewayUnavailable(f"{self.name}: timed out")
            return GatewayResult(**json.loads(remembered))
        result = decide()
        earlier = redis_client().set(memo_key, json.dumps(asdict(result)), ex=self.KEY_TTL_S, nx=True, get=True)
        # A call with the same key came first (a retry, a concurrent call): its answer is the answer.
        return result if earlier is None else GatewayResult(**json.loads(earlier))

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
