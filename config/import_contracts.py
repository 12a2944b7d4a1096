"""A custom import-linter contract: a module's face is its api and contracts.

For each listed module M, an import from outside M into ``M.x`` is allowed
only when ``x`` is one of the faces (``api``, ``contracts``) or listed in
``extra_faces``. Importers in ``allowed_importers`` (the URL root, tests) are
exempt.
"""

from __future__ import annotations

from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


class ModuleFaceContract(Contract):
    type_name = "module_face"

    modules = fields.ListField(subfield=fields.StringField())
    faces = fields.ListField(subfield=fields.StringField())
    allowed_importers = fields.ListField(subfield=fields.StringField(), required=False)
    extra_faces = fields.ListField(subfield=fields.StringField(), required=False)

    def _inside(self, module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        modules: list[str] = list(self.modules)  # type: ignore[call-overload]
        faces: list[str] = list(self.faces)  # type: ignore[call-overload]
        exempt: list[str] = list(self.allowed_importers or [])  # type: ignore[call-overload]
        extra: set[str] = set(self.extra_faces or [])  # type: ignore[call-overload]
        violations: list[dict[str, Any]] = []
        for package in modules:
            allowed_targets = {f"{package}.{face}" for face in faces} | {m for m in extra if self._inside(m, package)}
            for target in sorted(graph.find_descendants(package) | {package}):
                if target == package or target in allowed_targets:
                    continue
                for importer in sorted(graph.find_modules_that_directly_import(target)):
                    if self._inside(importer, package) or any(self._inside(importer, e) for e in exempt):
                        continue
                    details = graph.get_import_details(importer=importer, imported=target)
                    line = details[0]["line_number"] if details else "?"
                    violations.append({"importer": importer, "imported": target, "line": line})
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for v in check.metadata["violations"]:
            output.print_error(
                f"{v['importer']} (l.{v['line']}) imports {v['imported']}: use its api or contracts instead",
                bold=False,
            )
        output.new_line()
