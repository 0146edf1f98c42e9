"""cfn-lint, informational checks included, finds nothing in any template under cloudformation/."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint, lint_file

from helpers.config import REPO_ROOT

TEMPLATES = sorted((REPO_ROOT / "cloudformation").glob("*.yaml"))
CONFIG = ManualArgs(include_checks=["I"])


def test_the_workshop_templates_are_all_linted():
    assert {"storage.yaml", "function.yaml"} <= {path.name for path in TEMPLATES}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_template_has_no_cfn_lint_findings(template: Path):
    findings = lint_file(template, CONFIG)
    assert not findings, "cfn-lint findings:\n" + "\n".join(
        f"{template.name}:{m.linenumber} {m.rule.id} {m.message}" for m in findings
    )


def test_informational_findings_are_included():
    """The configuration above must report I-level rules, or a clean run would prove nothing."""
    body = "Resources:\n  FileSystem:\n    Type: AWS::EFS::FileSystem\n"
    assert "I3011" in {m.rule.id for m in lint(body, config=CONFIG)}
