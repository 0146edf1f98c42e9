"""Running 01 twice, then 99 twice, succeeds: every notebook is safe to re-run."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from localaws import server
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def run_notebook(name: str) -> list[str]:
    nb = nbformat.read(ROOT / name, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    return [
        "".join(o.get("text", ""))
        + str(o.get("data", {}).get("text/markdown", o.get("data", {}).get("text/plain", "")))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
    ]


def test_setup_twice_then_cleanup_twice(tmp_path, monkeypatch):
    state = tmp_path / "state"
    for key, value in {
        "WORKSHOP_BACKEND": "local",
        "WORKSHOP_STATE_DIR": str(state),
        "WORKSHOP_LOCAL_PORT": str(free_port()),
        "WORKSHOP_PREFIX": "rerun",
        "MPLBACKEND": "Agg",
    }.items():
        monkeypatch.setenv(key, value)
    try:
        run_notebook("01_setup_efs.ipynb")
        second = "\n".join(run_notebook("01_setup_efs.ipynb"))
        assert "rerun-storage is up to date: nothing to change" in second
        run_notebook("99_cleanup.ipynb")
        assert not state.exists()
        again = "\n".join(run_notebook("99_cleanup.ipynb"))
        assert "| rerun-storage | not there |" in again  # 99's table of what each stack's delete found
        assert not state.exists() and server.status(state) is None
    finally:
        server.stop(state)
