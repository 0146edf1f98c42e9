"""CloudFormation ``ListImports``: which stacks import an export.

Gap of stock moto 5.2.5 filled here: ``ListImports`` has no handler, so the server answers HTTP 500 and
boto3 raises ResponseParserError instead of a list. A cleanup that must delete an exporting stack only
after its importers are gone cannot ask. Here the answer is computed from every live stack's template:
each ``Fn::ImportValue`` is resolved with that stack's own parameters (as CloudFormation resolved it when
the stack was created). As on AWS, an export that no stack imports is a ValidationError
"Export '<name>' is not imported by any stack." and an unknown export "No export named <name> found.":
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListImports.html
"""

from __future__ import annotations

import logging
from typing import Any

from moto.cloudformation import responses
from moto.cloudformation.exceptions import ExportNotFound, ValidationError
from moto.cloudformation.parsing import clean_json
from moto.core.responses import ActionResult

log = logging.getLogger(__name__)


def _import_nodes(node: Any):
    if isinstance(node, dict):
        if "Fn::ImportValue" in node:
            yield node["Fn::ImportValue"]
        for value in node.values():
            yield from _import_nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _import_nodes(value)


def importers(backend: Any, export_name: str) -> list[str]:
    """Names of the live stacks whose templates import ``export_name``."""
    names = []
    for stack in list(backend.stacks.values()):
        if stack.status == "DELETE_COMPLETE" or not getattr(stack, "template_dict", None):
            continue
        for node in _import_nodes(stack.template_dict.get("Resources", {})):
            try:
                resolved = clean_json(node, stack.resource_map)
            except Exception:  # noqa: BLE001 - an expression moto cannot resolve imports nothing we can name
                log.debug("cannot resolve ImportValue %r in %s", node, stack.name)
                continue
            if resolved == export_name:
                names.append(stack.name)
                break
    return names


def list_imports(self) -> ActionResult:
    export_name = self._get_param("ExportName")
    backend = self.cloudformation_backend
    if export_name not in backend.exports:
        raise ExportNotFound(export_name)
    names = importers(backend, export_name)
    if not names:
        raise ValidationError(message=f"Export '{export_name}' is not imported by any stack.")
    return ActionResult({"Imports": names})


def apply() -> None:
    responses.CloudFormationResponse.list_imports = list_imports
