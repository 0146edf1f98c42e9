"""One figure for each size: what 01 says is seeded and read, and the README's full-run table, agree with
``helpers.workshop_cost``'s measured sizes (the README once priced 0.85 GB on EFS where 02 measured 0.59)."""

from __future__ import annotations

import json
import re

from helpers.config import REPO_ROOT
from helpers.workshop_cost import SEEDED_MB, RunAssumptions


def _markdown(notebook: str) -> str:
    cells = json.loads((REPO_ROOT / notebook).read_text())["cells"]
    return re.sub(r"\s+", " ", " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"))


def test_the_full_run_stores_what_02_measured():
    assert RunAssumptions().efs_stored_gb == round((SEEDED_MB["framework"] + SEEDED_MB["model"]) / 1000, 2)


def test_01_states_the_seeded_size_and_the_read_per_cold_start_of_the_full_run():
    run, text = RunAssumptions(), _markdown("01_setup_efs.ipynb")
    stated = {float(gb) for gb in re.findall(r"(\d+\.\d+) GB of framework and model", text)}
    stated |= {float(gb) for gb in re.findall(r"writes the (\d+\.\d+) GB", text)}
    assert stated == {round(run.efs_stored_gb, 1)}, f"01 says {stated} GB; 02 measures {run.efs_stored_gb}"
    (read,) = re.findall(r"every cold start reads about (\d+\.\d+) GB", text)
    assert float(read) == run.bundle_read_gb


def test_the_readme_prices_the_same_sizes():
    run, readme = RunAssumptions(), (REPO_ROOT / "README.md").read_text()
    assert f"| EFS storage | {run.efs_stored_gb:g} GB x" in readme
    assert f"x {run.bundle_read_gb:g} GB |" in readme
