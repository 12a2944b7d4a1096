from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from inventory.api import set_stock
from orders.models import ApiClient
from orders.services.clients import api_client_create, api_client_rotate

DEMO_STOCK = [
    # sku, name, on hand, policy, prices in minor units
    (
        "LIMITED-SNEAKER",
        "Limited edition sneaker (STRICT, 50 units)",
        50,
        "strict",
        {"EUR": 19900, "USD": 21900, "JPY": 32000},
    ),
    ("T-SHIRT-BASIC", "Basic T-shirt (large stock)", 1_000_000, "strict", {"EUR": 1500, "USD": 1700, "JPY": 2500}),
    ("GIFT-CARD-25", "Gift card 25 (EVENTUAL)", 1_000_000, "eventual", {"EUR": 2500, "USD": 2500, "JPY": 4000}),
]
ADMIN_USER = "admin"
CLIENT_NAME = "demo"


class Command(BaseCommand):
    help = "Create demo stock, an admin user and an API client; print how to use them. Safe to run twice."

    def handle(self, *args: Any, **options: Any) -> None:
        for sku, name, on_hand, policy, prices in DEMO_STOCK:
            set_stock(sku=sku, on_hand=on_hand, policy=policy, name=name, prices=prices)
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin")
        user_model = get_user_model()
        if not user_model.objects.filter(username=ADMIN_USER).exists():
            user_model.objects.create_superuser(ADMIN_USER, "admin@example.com", password)
        # The token's hash is all we keep, so a re-run issues a fresh token.
        if ApiClient.objects.filter(name=CLIENT_NAME).exists():
            _, token = api_client_rotate(name=CLIENT_NAME)
        else:
            _, token = api_client_create(name=CLIENT_NAME)
        port = os.environ.get("PORT", "8000")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"  SKUs:       {', '.join(s[0] for s in DEMO_STOCK)}")
        self.stdout.write(f"  Admin:      http://127.0.0.1:{port}/admin/  user {ADMIN_USER!r}, password {password!r}")
        self.stdout.write(f"  API token:  {token}")
        self.stdout.write("  Try it:")
        self.stdout.write(
            f"    curl -s -X POST http://127.0.0.1:{port}/api/v1/orders \\\n"
            f"      -H 'Authorization: Bearer {token}' -H 'Idempotency-Key: demo-1' \\\n"
            "      -H 'Content-Type: application/json' -H 'Prefer: wait=2' \\\n"
            '      -d \'{"customer_id": "c-1", "region": "eu", "currency": "EUR", '
            '"lines": [{"sku": "LIMITED-SNEAKER", "quantity": 1}], "payment_token": "tok_ok", '
            '"shipping_address": {"country": "DE", "name": "Ada", "city": "Berlin"}}\''
        )
