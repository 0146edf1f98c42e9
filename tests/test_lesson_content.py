"""What issue 13 asked the notebooks to teach stays in them: 03 shows the mechanism before the helpers
hide it, 03 and 04 say what to expect on AWS, 04 has the alternatives and the memory sweep, and both end
with exercises whose answers the notebook computes. Read from the committed notebooks' sources."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _cells(name: str) -> list[tuple[str, str]]:
    cells = json.loads((ROOT / name).read_text())["cells"]
    return [(c["cell_type"], "".join(c["source"])) for c in cells]


def _text(name: str, kind: str) -> str:
    return re.sub(r"\s+", " ", "\n".join(src for t, src in _cells(name) if t == kind))


def _headings(name: str) -> list[str]:
    return [
        line
        for t, src in _cells(name)
        if t == "markdown"
        for line in src.splitlines()
        if line.startswith("## ")
    ]


def test_03_shows_the_templates_lesson_and_the_calls_that_force_a_cold_start():
    code = _text("03_deploy_lambda.ipynb", "code")
    for key in ("VpcConfig", "FileSystemConfigs", "Environment", "Resources.ProvisionedAlias"):
        assert key in code, f"03 no longer shows {key} of function.yaml"
    for call in ("update_function_configuration(", "publish_version(", "Qualifier=cold_version"):
        assert call in code, f"03 no longer makes the boto3 call {call} itself"
    assert "filter_log_events(" in code and "init_details(" in code  # the init line, from CloudWatch Logs


@pytest.mark.parametrize("name", ["03_deploy_lambda.ipynb", "04_benchmark.ipynb"])
def test_what_to_expect_on_aws_puts_the_published_figures_beside_the_local_ones(name):
    said = _text(name, "markdown") + _text(name, "code")
    assert ("11,135 ms" in said and "2,951 ms" in said) or "aws_expectations(" in said


def test_04_weighs_the_alternatives_and_says_snapstart_does_not_support_efs():
    # https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html: "SnapStart does not support provisioned
    # concurrency, Amazon Elastic File System (Amazon EFS), or ephemeral storage greater than 512 MB."
    (section,) = [src for t, src in _cells("04_benchmark.ipynb") if t == "markdown" and "Alternatives" in src]
    for option in ("container image", "10 GB", "/tmp", "layers", "250 MB"):
        assert option in section, f"04's alternatives lost {option!r}"
    assert re.search(r"SnapStart(\]\([^)]*\))?[^.]*does not support\s+EFS", section)  # its link may follow


def test_04_sweeps_memory_marks_fastest_and_cheapest_and_says_where_cpu_scaling_is_not_enforced():
    code = _text("04_benchmark.ipynb", "code")
    assert "sweep.run(" in code and "sweep.plot(" in code
    assert "sweep.verdict(sweep_rows, CPU_SCALED)" in code  # the verdict is told whether CPU scaled


@pytest.mark.parametrize("name", ["03_deploy_lambda.ipynb", "04_benchmark.ipynb"])
def test_the_notebook_ends_with_exercises_whose_answers_it_computes(name):
    headings = _headings(name)
    assert headings[-2].startswith("## ") and "Exercises" in headings[-2] and headings[-1] == "## Summary"
    after = _cells(name)[[i for i, (t, s) in enumerate(_cells(name)) if "Exercises" in s][0] :]
    answered = [src for t, src in after if t == "code" and "check_prediction(" in src]
    assert len(answered) >= 2 and all(re.search(r"check_prediction\(PREDICTION_\d", src) for src in answered)
