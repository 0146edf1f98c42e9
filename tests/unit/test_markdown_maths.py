"""No Markdown the learner sees turns into maths: two ``$`` amounts in one cell become a formula in
JupyterLab (``$0.03 per hour ... $22 a month`` typesets everything between them as TeX).

JupyterLab finds maths twice. First ``removeMath`` (packages/rendermime/src/latex.ts), ported here as
``math_spans``, hands text between delimiters to MathJax before the Markdown parser runs: ``$...$``,
``$$...$$``, ``\\\\(...\\\\)``, ``\\\\[...\\\\]`` and ``\\begin{..}...\\end{..}``, never across a blank line,
with ``$`` inside code spans and fences protected, and ``\\$`` not a delimiter. Then MathJax typesets the
rendered page, block by block (a paragraph, a list item, a table cell), with ``processEscapes``: by
then the Markdown parser has turned ``\\$`` into a bare ``$``, so two of them in one paragraph are maths
after all (seen in JupyterLab 4.6 with headless Chromium), while ``\\\\$`` reaches MathJax as ``\\$``
and shows a dollar sign. ``rendered_math_blocks`` models that second pass.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import expectations, findings, stats

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(ROOT.glob("[0-9][0-9]_*.ipynb"))
_MATHSPLIT = re.compile(
    r"(\$\$?|\\(?:begin|end)\{[a-z]*\*?\}|\\[{}$]|[{}]|(?:\n\s*)+|@@\d+@@|\\\\(?:\(|\)|\[|\]))", re.IGNORECASE
)


def _protect_code(text: str) -> str:
    if "`" not in text and "~~~" not in text:
        return text
    text = text.replace("~", "~T")
    fence = re.compile(r"^(?P<fence>`{3,}|(?:~T){3,})[^`\n]*\n[\s\S]*?^(?P=fence)`*$", re.MULTILINE)
    text = fence.sub(lambda m: m.group(0).replace("$", "~D"), text)
    span = re.compile(r"(^|[^\\])(`+)([^\n]*?[^`\n])\2(?!`)", re.MULTILINE)
    return span.sub(lambda m: m.group(0).replace("$", "~D"), text)


def math_spans(text: str) -> list[str]:
    """The pieces of ``text`` that JupyterLab would typeset as maths (empty for plain prose)."""
    blocks = _MATHSPLIT.split(_protect_code(text.replace("\r\n", "\n")))
    spans: list[str] = []
    start = end = last = None
    braces = 0
    i = 1
    while i < len(blocks):
        block = blocks[i]
        if block.startswith("@"):
            pass
        elif start is not None:
            if block == end:
                if braces:
                    last = i
                else:
                    spans.append("".join(blocks[start : i + 1]))
                    start = end = last = None
            elif re.search(r"\n.*\n", block):
                if last is not None:
                    i = last
                    spans.append("".join(blocks[start : i + 1]))
                start = end = last = None
                braces = 0
            elif block == "{":
                braces += 1
            elif block == "}" and braces:
                braces -= 1
        elif block in ("$", "$$"):
            start, end, braces = i, block, 0
        elif block in ("\\\\(", "\\\\["):
            start, end, braces = i, "\\\\)" if block.endswith("(") else "\\\\]", 0
        elif block[1:6] == "begin":
            start, end, braces = i, "\\end" + block[6:], 0
        i += 2
    if last is not None:
        spans.append("".join(blocks[start : last + 1]))
    return spans


def _blocks(text: str) -> list[str]:
    """The block elements Markdown makes of ``text``: paragraphs, list items, table cells (code removed)."""
    text = re.sub(r"^(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\1[`~]*$", "", text, flags=re.MULTILINE)
    blocks: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        lines = [line for line in para.splitlines() if line.strip()]
        if lines and all(line.lstrip().startswith("|") for line in lines):
            blocks += [cell for line in lines for cell in re.split(r"(?<!\\)\|", line)]
        elif lines and re.match(r"\s*([-*+]|\d+\.)\s", lines[0]):
            for line in lines:
                if re.match(r"\s*([-*+]|\d+\.)\s", line) or not blocks:
                    blocks.append(line)
                else:
                    blocks[-1] += "\n" + line
        else:
            blocks.append(para)
    return [re.sub(r"(`+)[^`]*?\1", "", block) for block in blocks]


def rendered_math_blocks(text: str) -> list[str]:
    """Blocks in which MathJax finds two unescaped ``$`` once Markdown has rendered them."""
    found = []
    for block in _blocks(text):
        shown = block.replace("\\\\$", "\x00").replace("\\$", "$")  # as the Markdown parser renders them
        if shown.count("$") >= 2:
            found.append(block)
    return found


def maths(text: str) -> list[str]:
    return math_spans(text) + rendered_math_blocks(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("costs \\$0.03 per hour, \\$22 a month", ["costs \\$0.03 per hour, \\$22 a month"]),
        ("costs \\\\$0.03 per hour, \\\\$22 a month", []),
        ("| per hour | \\$0.03 |\n| per month | \\$22 |", []),
        ("- one \\$1\n- two \\$2", []),
        ("- one \\$1 and \\$2\n- two", ["- one \\$1 and \\$2"]),
        ("`$1` and `$2` in code, \\$3 once", []),
    ],
)
def test_rendered_math_blocks_finds_what_mathjax_typesets_after_markdown(text, expected):
    assert rendered_math_blocks(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("costs $0.03 per hour, $22 a month", ["$0.03 per hour, $"]),
        ("costs $0.03 per hour,\nabout $22 a month", ["$0.03 per hour,\nabout $"]),
        ("costs $0.03 per hour.\n\nAbout $22 a month", []),
        (r"costs \$0.03 per hour, \$22 a month", []),
        ("`$LATEST` and `${Name}` in code", []),
        ("one amount: $0.30 per GB-month", []),
        ("$$x^2$$ and \\\\(y\\\\)", ["$$x^2$$", "\\\\(y\\\\)"]),
    ],
)
def test_math_spans_finds_what_jupyterlab_typesets(text, expected):
    assert math_spans(text) == expected


def _markdown_cells(path: Path) -> list[tuple[int, str]]:
    cells = json.loads(path.read_text())["cells"]
    return [(i, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_markdown_cell_renders_as_maths(path):
    garbled = {i: spans for i, text in _markdown_cells(path) if (spans := maths(text))}
    assert not garbled, f"{path.name}: cells render as maths (write \\\\$ for a dollar amount): {garbled}"


def _records() -> list[dict]:
    rows = []
    for scenario, client, init, n in (
        ("cold", 2700.0, 2000.0, 5),
        ("warm", 40.0, None, 30),
        ("provisioned", 42.0, None, 30),
        ("burst-on-demand", 2900.0, 2100.0, 3),
        ("burst-provisioned", 2950.0, 2100.0, 3),
    ):
        for index in range(n):
            rows.append(
                {
                    "scenario": scenario,
                    "index": index,
                    "client_ms": client + index,
                    "duration_ms": client - (init or 0) - 5 + index,
                    "billed_ms": int(client + index),
                    "init_ms": init,
                    "init_type": "on-demand" if scenario != "provisioned" else "provisioned-concurrency",
                    "cold": init is not None,
                    "init_in_duration": False,
                    "error": None,
                }
            )
    return rows


def test_the_markdown_the_helpers_show_does_not_render_as_maths():
    records = _records()
    shown = [
        findings.conclusion(records, 2048, "x86_64", 1),
        stats.to_markdown(stats.table(records)),
        findings.provisioned_cost_markdown(2048, "x86_64", 1),
        expectations.table(findings.medians(records), 2048, 1200, 280e6, 2, False),
        "\n".join(findings.caveats(None)),
    ]
    for text in shown:
        assert text.strip()
        assert maths(text) == [], text
    assert sum(text.count("$") for text in shown) >= 3  # amounts were produced, escaped
