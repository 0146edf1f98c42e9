"""Run the workshop's notebooks headless, in order (what ``make demo`` does).

Each notebook is executed with its own kernel; the executed copies go to ``build/notebooks/`` and the
benchmark's results and figures to ``build/results/``. Stops at the first failing notebook and says
which cell failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from helpers.config import REPO_ROOT


def run(notebooks: list[Path], out_dir: Path, timeout: int = 1800) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        started = time.monotonic()
        print(f"running {path.name} ...", flush=True)
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(REPO_ROOT)}}
        )
        try:
            client.execute()
        except CellExecutionError as exc:
            nbformat.write(nb, out_dir / path.name)
            sys.exit(f"{path.name} failed (executed copy: {out_dir / path.name}):\n{exc}")
        nbformat.write(nb, out_dir / path.name)
        print(f"  done in {time.monotonic() - started:.0f} s -> {out_dir / path.name}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.runbook", description=__doc__)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "notebooks")
    args = parser.parse_args(argv)
    results = Path(os.environ.setdefault("WORKSHOP_RESULTS_DIR", str(REPO_ROOT / "build" / "results")))
    started = time.monotonic()
    run(args.notebooks, args.out)
    print(f"\nThe workshop ran end to end in {time.monotonic() - started:.0f} s.")
    print(f"  executed notebooks: {args.out}")
    print(f"  benchmark results and figures: {results}")


if __name__ == "__main__":
    main()
