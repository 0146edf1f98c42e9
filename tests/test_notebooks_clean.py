"""Notebooks are committed without outputs and follow the workshop's skeleton."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(ROOT.glob("[0-9][0-9]_*.ipynb"))


def code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_the_workshop_has_its_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert "01_setup_efs.ipynb" in names and "99_cleanup.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs_or_execution_counts(path):
    dirty = [i for i, c in enumerate(code_cells(path)) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_exactly_one_parameters_cell(path):
    tagged = [c for c in code_cells(path) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected one cell tagged 'parameters', found {len(tagged)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_is_introduced_by_a_sentence(path):
    cells = json.loads(path.read_text())["cells"]
    bare = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and (i == 0 or cells[i - 1]["cell_type"] != "markdown")
    ]
    assert not bare, f"{path.name}: code cells {bare} have no markdown sentence before them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_claims_an_output_check_that_nbval_cannot_make(path):
    """nbval compares outputs only for cells that were executed when saved; ours are stripped, so
    ``# NBVAL_CHECK_OUTPUT`` would check nothing. Notebooks pin deterministic facts with ``assert``."""
    marked = [i for i, c in enumerate(code_cells(path)) if "NBVAL_CHECK_OUTPUT" in "".join(c["source"])]
    assert not marked, (
        f"{path.name}: cells {marked} use NBVAL_CHECK_OUTPUT; use an assert in the cell instead"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_code_cell_is_long_enough_to_belong_in_helpers(path):
    """STYLE: most cells under ~10 lines; anything over ~30 belongs in helpers/."""
    long = [i for i, c in enumerate(code_cells(path)) if len("".join(c["source"]).splitlines()) > 30]
    assert not long, f"{path.name}: code cells {long} are over 30 lines; move the plumbing into helpers/"
