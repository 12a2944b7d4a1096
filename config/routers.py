"""Send every model to its module's alias; nothing relates across aliases."""

from __future__ import annotations

from typing import Any

from config.database import MODULE_ALIASES


def alias_for_app(app_label: str) -> str:
    return app_label if app_label in MODULE_ALIASES else "default"


class ModuleRouter:
    def db_for_read(self, model: Any, **hints: Any) -> str:
        return alias_for_app(model._meta.app_label)

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return alias_for_app(model._meta.app_label)

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return alias_for_app(obj1._meta.app_label) == alias_for_app(obj2._meta.app_label)

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == alias_for_app(app_label)
