from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create each module's schema and apply its migrations, for every database alias."

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options.get("verbosity", 1))
        for alias in settings.DATABASES:
            if verbosity:
                self.stdout.write(f"migrating {alias}")
            call_command("migrate", database=alias, interactive=False, verbosity=max(0, verbosity - 1))
