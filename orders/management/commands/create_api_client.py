from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from orders.models import ApiClient, ClientRole
from orders.services.clients import api_client_create, api_client_rotate


class Command(BaseCommand):
    help = "Create a REST API client and print its bearer token (shown once; only its hash is stored)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--rotate", action="store_true", help="Issue a new token for an existing client.")
        parser.add_argument(
            "--role",
            choices=[r.value for r in ClientRole],
            default=ClientRole.MERCHANT.value,
            help="merchant (places orders) or carrier (reports shipments)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        if not name:
            raise CommandError("--name must not be empty")
        exists = ApiClient.objects.filter(name=name).exists()
        if exists and not options["rotate"]:
            raise CommandError(f"client {name!r} exists; use --rotate to issue a new token")
        _, token = api_client_rotate(name=name) if exists else api_client_create(name=name, role=options["role"])
        self.stdout.write(token)
