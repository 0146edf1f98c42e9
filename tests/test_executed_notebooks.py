"""Executed notebooks are the product too: every figure embedded as a PNG, every image path resolved.

The runbook (``make demo`` / ``make html``) is exercised on a tiny notebook of its own, with
``MPLBACKEND=Agg`` in the environment as ``make test`` sets it, so the test fails if kernels fall back
to a backend that saves ``<Figure size ...>`` instead of the figure. Executed copies of the workshop's
notebooks found in ``build/notebooks/`` (left by ``make demo``/``make html``) or in the folder named by
``WORKSHOP_EXECUTED_DIR`` are checked the same way.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from pathlib import Path

import nbformat
import pytest

from helpers import runbook

ROOT = Path(__file__).resolve().parent.parent


def _figure_helpers() -> list[str]:
    """``module.function`` for every public helper that returns a matplotlib Figure (read from the
    helpers' own return annotations, so a new plotting helper is covered without editing this test)."""
    names = []
    for path in sorted((ROOT / "helpers").glob("*.py")):
        module = importlib.import_module(f"helpers.{path.stem}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            returns = inspect.signature(function).return_annotation
            if not name.startswith("_") and getattr(returns, "__name__", returns) == "Figure":
                names.append(f"{path.stem}.{name}")
    return names


FIGURE_CALL = re.compile(
    "|".join([rf"\b{re.escape(name)}\(" for name in _figure_helpers()] + [r"\bdisplay\(fig"])
)
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


def figure_cells_without_png(nb) -> list[int]:
    """Code cells that make a figure (a ``plots.*(`` call, or an output whose text is a Figure repr)
    but hold no image/png output."""
    missing = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        outputs = cell.get("outputs", [])
        has_png = any("image/png" in out.get("data", {}) for out in outputs)
        figure_repr = any(
            str(out.get("data", {}).get("text/plain", "")).startswith("<Figure size") for out in outputs
        )
        makes_figure = bool(FIGURE_CALL.search(cell.source)) or figure_repr
        if makes_figure and not has_png:
            missing.append(index)
    return missing


def relative_image_links(nb) -> list[str]:
    links = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            links += [m.group(2) for m in runbook._MARKDOWN_IMAGE.finditer(cell.source)]
    return links


def test_the_checker_flags_a_figure_saved_as_text():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plots.latency_cdf(records)")
    cell.outputs = [
        nbformat.v4.new_output("execute_result", {"text/plain": "<Figure size 900x500 with 1 Axes>"})
    ]
    nb.cells.append(cell)
    assert figure_cells_without_png(nb) == [0]


@pytest.mark.parametrize(
    "call", ["sweep.plot(rows, params)", "compare.latency_plot(rows)", "compare.cost_plot(rows, m)"]
)
def test_the_checker_knows_every_helper_that_draws_a_figure(call):
    """04's memory sweep and 05's comparison plots are figure cells too, not only ``plots.*``."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(call)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="nothing drawn")]
    nb.cells.append(cell)
    assert figure_cells_without_png(nb) == [0]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """A tiny notebook (a figure, a helper plot, an image link) run through the runbook under Agg."""
    src = tmp_path_factory.mktemp("src")
    (src / "images").mkdir()
    (src / "images" / "picture.svg").write_text(SVG)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("A picture: ![the picture](images/picture.svg)"),
        nbformat.v4.new_markdown_cell("It costs \\\\$0.03 per hour, \\\\$22 a month."),
        nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2])\nplt.close(fig)\nfig"
        ),
        nbformat.v4.new_code_cell(
            "from helpers import plots\n"
            "plots.latency_cdf([{'scenario': 'warm', 'client_ms': 10.0}, {'scenario': 'warm', 'client_ms': 12.0}])"
        ),
        nbformat.v4.new_code_cell(
            "from helpers import bench\nbar = bench.Progress(3)\nfor _ in range(3):\n    bar.step('warm')\nbar.close()"
        ),
        nbformat.v4.new_code_cell(
            "from helpers import seeding\nline = seeding.UploadProgress('model', 3_000_000)\n"
            "for _ in range(3):\n    line(1_000_000)\nline.close()"
        ),
    ]
    nbformat.write(nb, src / "tiny.ipynb")
    out = tmp_path_factory.mktemp("executed")
    saved = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"  # as make test sets it: the runbook must override it for kernels
    try:
        path = runbook.execute(src / "tiny.ipynb", out, timeout=120)
    finally:
        if saved is None:
            os.environ.pop("MPLBACKEND")
        else:
            os.environ["MPLBACKEND"] = saved
    return path


def test_the_runbook_embeds_every_figure_as_a_png(executed):
    nb = nbformat.read(executed, as_version=4)
    assert figure_cells_without_png(nb) == []
    assert sum("image/png" in o.get("data", {}) for c in nb.cells[2:4] for o in c.outputs) == 2


def test_a_saved_progress_line_shows_where_it_ended_not_zero_percent(executed):
    (output,) = nbformat.read(executed, as_version=4).cells[4].outputs
    assert "application/vnd.jupyter.widget-view+json" not in output.data
    assert re.fullmatch(r"3/3 invocations in \d+ s \(done\)", output.data["text/plain"])


def test_a_saved_upload_line_shows_what_was_uploaded_not_a_bar_at_zero_percent(executed):
    """02's uploads were saved as 'uploading model:   0%|' (tqdm's widget, which a saved notebook cannot replay)."""
    (output,) = nbformat.read(executed, as_version=4).cells[5].outputs
    assert "application/vnd.jupyter.widget-view+json" not in output.data
    assert re.fullmatch(r"uploaded model: 3\.0 MB in \d+ s", output.data["text/plain"])


def test_the_runbook_embeds_linked_images_so_the_copy_stands_alone(executed):
    nb = nbformat.read(executed, as_version=4)
    assert relative_image_links(nb) == []
    assert "attachment:picture.svg" in nb.cells[0].source
    assert "image/svg+xml" in nb.cells[0].attachments["picture.svg"]


def test_the_html_export_is_self_contained(executed, tmp_path):
    (page,) = runbook.export_html([executed], tmp_path)
    html = page.read_text()
    assert html.count("data:image/png;base64,") >= 2
    assert "data:image/svg+xml;base64," in html
    assert "images/picture.svg" not in html


def test_the_html_export_shows_escaped_dollars_without_needing_mathjax(executed, tmp_path):
    (page,) = runbook.export_html([executed], tmp_path)
    html = page.read_text()
    assert (
        'costs <span class="tex2jax_ignore">$</span>0.03 per hour, <span class="tex2jax_ignore">$</span>22'
        in html
    )
    assert "\\$" not in html.split("<pre")[0].split("<body")[-1]


def test_the_html_export_shows_code_in_monospace_and_wraps_output_lines_between_words(executed, tmp_path):
    """Issue 20 item 10: the REPORT line broke mid-word and the YAML excerpt rendered in a proportional font."""
    (page,) = runbook.export_html([executed], tmp_path)
    head = page.read_text().split("</head>")[0]
    assert "monospace" in head and "word-break: normal" in head and ".jp-RenderedMarkdown pre" in head


def test_a_missing_linked_image_is_named(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("![x](images/nowhere.svg)")]
    with pytest.raises(FileNotFoundError, match="nowhere.svg"):
        runbook.embed_images(nb, tmp_path)


def _executed_copies() -> list[Path]:
    folders = [ROOT / "build" / "notebooks"]
    if os.environ.get("WORKSHOP_EXECUTED_DIR"):
        folders.insert(0, Path(os.environ["WORKSHOP_EXECUTED_DIR"]))
    return [p for folder in folders if folder.is_dir() for p in sorted(folder.glob("[0-9][0-9]_*.ipynb"))]


@pytest.mark.parametrize("path", _executed_copies(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_figure_cell_of_an_executed_workshop_notebook_embeds_a_png(path):
    nb = nbformat.read(path, as_version=4)
    assert figure_cells_without_png(nb) == [], f"{path}: figure cells without an embedded PNG"
    assert relative_image_links(nb) == [], f"{path}: image links that do not resolve in the copy"


def test_the_executed_copies_cover_every_workshop_notebook():
    """A folder of executed copies that misses a notebook (one added since the last ``make demo``) would
    leave that notebook's figures unchecked: say so instead of passing over it."""
    copies = _executed_copies()
    if not copies:
        pytest.skip("no executed notebooks to check: run make demo (or set WORKSHOP_EXECUTED_DIR)")
    sources = {p.name for p in ROOT.glob("[0-9][0-9]_*.ipynb")}
    for folder in {p.parent for p in copies}:
        missing = sorted(sources - {p.name for p in copies if p.parent == folder})
        assert not missing, f"{folder} has no executed copy of {missing}: run make demo again"


@pytest.mark.parametrize("path", _executed_copies(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_markdown_output_of_an_executed_notebook_renders_as_maths(path):
    """The Markdown the helpers show at run time (the sweep's table, 05's comparison, cost tables) is read
    by JupyterLab as the cells are: two unescaped dollar amounts in one block become a formula."""
    from tests.unit.test_markdown_maths import maths

    garbled = {}
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/markdown")
            if text and (spans := maths(text)):
                garbled[index] = spans
    assert not garbled, f"{path}: Markdown outputs that render as maths: {garbled}"
