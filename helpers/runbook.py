"""Run the workshop's notebooks headless, in order (what ``make demo`` and ``make html`` do).

Each notebook is executed with its own kernel; the executed copies go to ``build/notebooks/`` and the
benchmark's results and figures to ``build/results/``. Stops at the first failing notebook and says
which cell failed.

The executed copies are what an instructor projects, so they must stand on their own:

- kernels run with matplotlib's inline backend whatever ``MPLBACKEND`` the caller set (``Agg``, as
  tests use, would leave ``<Figure size 900x500 with 1 Axes>`` where a figure belongs);
- images that Markdown cells link by a relative path (``images/architecture.svg``) are embedded as
  cell attachments, so they show wherever the copy is written;
- ``--html DIR`` also exports every executed copy to one self-contained HTML file.
"""

from __future__ import annotations

import argparse
import base64
import logging
import mimetypes
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from helpers.config import REPO_ROOT

log = logging.getLogger(__name__)

#: matplotlib-inline's backend: figures become image/png outputs in the saved notebook.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
# ![alt](path) with a relative path (not attachment:, a URL or a data URI).
_MARKDOWN_IMAGE = re.compile(r"!\[([^\]]*)\]\((?!attachment:|[a-z][a-z0-9+.-]*:)([^)\s]+)\)", re.IGNORECASE)


def kernel_env() -> dict[str, str]:
    """The environment notebook kernels start with: the caller's, with the inline matplotlib backend."""
    return {**os.environ, "MPLBACKEND": INLINE_BACKEND}


def embed_images(nb: Any, base: Path) -> list[str]:
    """Replace relative Markdown image links in ``nb`` by cell attachments read from ``base``; return
    the files embedded. A link to a file that does not exist raises FileNotFoundError naming it."""
    embedded: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue

        def attach(match: re.Match, cell=cell) -> str:
            path = (base / match.group(2)).resolve()
            if not path.is_file():
                raise FileNotFoundError(
                    f"A Markdown cell shows {match.group(2)}, which is not at {path}: fix the link or add the file."
                )
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            data = base64.b64encode(path.read_bytes()).decode()
            cell.setdefault("attachments", {})[path.name] = {mime: data}
            embedded.append(match.group(2))
            return f"![{match.group(1)}](attachment:{path.name})"

        cell.source = _MARKDOWN_IMAGE.sub(attach, cell.source)
    return embedded


def execute(path: Path, out_dir: Path, timeout: int = 1800) -> Path:
    """Execute one notebook (working directory: the repository) and write the copy to ``out_dir``.

    Raises ``CellExecutionError`` after writing the copy when a cell fails.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(REPO_ROOT)}}
    )
    target = out_dir / path.name
    try:
        client.execute(env=kernel_env())
    finally:  # a failed run's copy is written too, to show the failing cell
        embed_images(nb, path.resolve().parent)
        nbformat.write(nb, target)
    return target


_PRE = re.compile(r"(<pre[\s>].*?</pre>)", re.DOTALL)


def protect_dollars(html: str) -> str:
    """Show every escaped dollar (``\\$``, how Markdown hands one to MathJax) as a dollar sign that MathJax
    skips, so the page reads the same with MathJax (online) and without it (offline); code is left alone."""
    parts = _PRE.split(html)
    for index in range(0, len(parts), 2):  # even parts are outside <pre> blocks
        parts[index] = parts[index].replace("\\$", '<span class="tex2jax_ignore">$</span>')
    return "".join(parts)


#: Added to every page: code (the YAML excerpts, the handler's lines) in a monospace font wherever it is, and
#: output lines (a REPORT line) wrapped between words, never inside one.
PAGE_STYLE = """<style>
pre, code, .jp-RenderedMarkdown pre, .jp-RenderedMarkdown code, .jp-RenderedHTMLCommon pre {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
.jp-OutputArea-output pre { white-space: pre-wrap; word-break: normal; overflow-wrap: anywhere; }
</style>
"""


def export_html(notebooks: list[Path], html_dir: Path) -> list[Path]:
    """One self-contained HTML page per executed notebook (figures and attachments inline)."""
    import nbformat
    from nbconvert import HTMLExporter

    html_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(embed_images=True)
    pages = []
    for path in notebooks:
        body, _ = exporter.from_notebook_node(
            nbformat.read(path, as_version=4), resources={"metadata": {"path": str(path.parent)}}
        )
        page = html_dir / f"{path.stem}.html"
        page.write_text(protect_dollars(body).replace("</head>", PAGE_STYLE + "</head>", 1), encoding="utf-8")
        pages.append(page)
    return pages


def run(notebooks: list[Path], out_dir: Path, timeout: int = 1800) -> list[Path]:
    """Execute ``notebooks`` in order into ``out_dir``; exit with the failing cell at the first error."""
    from nbclient.exceptions import CellExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        started = time.monotonic()
        print(f"running {path.name} ...", flush=True)
        try:
            written.append(execute(path, out_dir, timeout))
        except CellExecutionError as exc:
            sys.exit(f"{path.name} failed (executed copy: {out_dir / path.name}):\n{exc}")
        print(f"  done in {time.monotonic() - started:.0f} s -> {out_dir / path.name}", flush=True)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.runbook", description=__doc__)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "notebooks")
    parser.add_argument("--html", type=Path, default=None, help="also export the executed copies here")
    args = parser.parse_args(argv)
    results = Path(os.environ.setdefault("WORKSHOP_RESULTS_DIR", str(REPO_ROOT / "build" / "results")))
    started = time.monotonic()
    written = run(args.notebooks, args.out)
    print(f"\nThe workshop ran end to end in {time.monotonic() - started:.0f} s.")
    print(f"  executed notebooks: {args.out}")
    print(f"  benchmark results and figures: {results}")
    if args.html:
        pages = export_html(written, args.html)
        print(f"  HTML pages ({len(pages)}): {args.html}")


if __name__ == "__main__":
    main()
