"""CloudFormation: templates are parsed as data, never as Python, and as CloudFormation parses them.

Gap of stock moto 5.2.5 closed here: moto parses every YAML template with PyYAML's full ``yaml.Loader``
(``FakeStack.parse_template``, ``FakeChangeSet._parse_template``, ``ValidateTemplate`` and
``GetTemplateSummary``), which builds Python objects from tags such as
``!!python/object/apply:builtins.open``: a template body sent to ``CreateStack`` ran code on the host,
as the server's user. Here one loader serves all four: a ``yaml.SafeLoader`` that knows only
CloudFormation's short-form intrinsic functions (``!Ref``, ``!GetAtt``, ``!Sub``, ... turned into their
long form as moto's own constructor does), so any other tag is an error.

It also refuses what CloudFormation refuses, with CloudFormation's ``ValidationError`` (moto answered
an HTML 500 or ran out of memory):

- YAML aliases: "Template error: YAML aliases are not allowed in CloudFormation templates"
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-formats.html). Refusing
  them also rules out the "billion laughs" expansion of a small template into a huge one.
- A template that is not well-formed YAML or JSON, an unknown tag, or one nested too deeply for the
  parser: "Template format error: YAML not well-formed. (line L, column C)", AWS's wording, also from
  ``ValidateTemplate`` (which moto hands to cfn-lint, whose parse error reads otherwise).
"""

from __future__ import annotations

import json
import types

import yaml
from moto.cloudformation import models, responses
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.utils import yaml_tag_constructor

# CloudFormation's short-form intrinsic functions:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html
SHORT_FORMS = (
    "Base64 Cidr Condition Equals FindInMap ForEach GetAtt GetAZs If ImportValue Join Length "
    "Not Or And Ref Select Split Sub ToJsonString Transform"
).split()


class CfnLoader(yaml.SafeLoader):
    """YAML as CloudFormation reads it: plain data and the short-form intrinsic functions, no aliases."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise ValidationError(
                message="Template error: YAML aliases are not allowed in CloudFormation templates"
            )
        return super().compose_node(parent, index)


for _name in SHORT_FORMS:
    CfnLoader.add_constructor(f"!{_name}", lambda loader, node: yaml_tag_constructor(loader, node.tag, node))


def _not_well_formed(mark) -> ValidationError:
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return ValidationError(message=f"Template format error: YAML not well-formed.{where}")


def load(template: str):
    """A template body as data: YAML (JSON is YAML too), else ValidationError as CloudFormation says it."""
    try:
        return yaml.load(template, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        if isinstance(exc, yaml.parser.ParserError | yaml.scanner.ScannerError):
            try:  # moto's own fallback: JSON that YAML cannot read (tabs, for one)
                return json.loads(template)
            except (ValueError, RecursionError):
                pass
        raise _not_well_formed(exc.problem_mark) from None
    except RecursionError:
        raise _not_well_formed(None) from None


class _SafeYaml(types.SimpleNamespace):
    """Stands in for the ``yaml`` module inside moto's CloudFormation modules: ``load`` always uses
    :class:`CfnLoader` whatever ``Loader`` moto passes, and ``add_multi_constructor`` (moto registers its
    tag constructor on PyYAML's global full loader before each parse) does nothing."""

    def load(self, stream, Loader=None):  # noqa: N803 - PyYAML's own parameter name
        return load(stream)

    def add_multi_constructor(self, *args, **kwargs) -> None:
        return None


def apply() -> None:
    safe = _SafeYaml(Loader=CfnLoader, SafeLoader=CfnLoader, YAMLError=yaml.YAMLError)
    models.yaml = safe
    responses.yaml = safe
    lint = models.CloudFormationBackend.validate_template

    def validate_template(self, template: str) -> list:
        load(template)  # CloudFormation's own answer to a malformed template, before moto's cfn-lint run
        return lint(self, template)

    models.CloudFormationBackend.validate_template = validate_template
