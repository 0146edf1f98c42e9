"""Show the lines of a template or of the function code that make a lesson, read from the file itself.

``excerpt("function", "Resources.Function.Properties.FileSystemConfigs")`` returns that key's block of
``cloudformation/function.yaml`` (with the comment lines right above it) as a fenced YAML block for
``IPython.display.Markdown``: the notebook shows what is deployed, not a copy that can drift from it.
``code("functions/inference/app.py", ("FRAMEWORK_DIR =", "import torch"), "_load")`` does the same for
Python: the lines from one that starts with the first text to one that starts with the second, and whole
functions by name, as one fenced Python block.
"""

from __future__ import annotations

import ast
import logging
import textwrap

from helpers.config import REPO_ROOT

log = logging.getLogger(__name__)

TEMPLATES = REPO_ROOT / "cloudformation"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def block(lines: list[str], path: str) -> list[str]:
    """The lines of the mapping key at dotted ``path`` (``A.B.C``), comments above it included."""
    start, end, parent = 0, len(lines), -1
    for key in path.split("."):
        children = [
            i
            for i in range(start, end)
            if _is_content(lines[i]) and _indent(lines[i]) > parent and lines[i].strip().startswith(f"{key}:")
        ]
        if not children:
            raise KeyError(
                f"No {key!r} under {path.rsplit(key, 1)[0].rstrip('.') or 'the top level'} in the template."
            )
        found = min(children, key=lambda i: _indent(lines[i]))
        parent = _indent(lines[found])
        stop = found + 1
        while stop < end and (not _is_content(lines[stop]) or _indent(lines[stop]) > parent):
            stop += 1
        while stop > found + 1 and not _is_content(lines[stop - 1]):  # the next key's comments
            stop -= 1
        start, end = found, stop
    first = start
    while first > 0 and lines[first - 1].strip().startswith("#") and _indent(lines[first - 1]) == parent:
        first -= 1
    return lines[first:end]


def excerpt(template: str, *paths: str) -> str:
    """The blocks at ``paths`` of ``cloudformation/<template>.yaml`` as one fenced YAML block (Markdown)."""
    file = TEMPLATES / f"{template}.yaml"
    if not file.is_file():
        raise FileNotFoundError(
            f"No template {file}: use one of {sorted(p.stem for p in TEMPLATES.glob('*.yaml'))}."
        )
    lines = file.read_text().splitlines()
    parts = []
    for path in paths:
        parts.append(f"# {path}\n" + textwrap.dedent("\n".join(block(lines, path))))
    return f"`cloudformation/{file.name}`:\n\n```yaml\n" + "\n\n".join(parts) + "\n```"


def code(relative: str, *parts: str | tuple[str, str]) -> str:
    """Parts of a Python file of the repository as one fenced block (Markdown): a ``(first, last)`` pair is
    the lines from the first that starts with ``first`` to the next that starts with ``last``; a name is
    that function's whole definition."""
    file = REPO_ROOT / relative
    text = file.read_text()
    lines = text.splitlines()
    functions = {
        node.name: (node.lineno - 1 - len(node.decorator_list), node.end_lineno)
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    shown = []
    for part in parts:
        if isinstance(part, tuple):
            first, last = part
            start = next((i for i, line in enumerate(lines) if line.startswith(first)), None)
            if start is None:
                raise KeyError(f"No line of {relative} starts with {first!r}.")
            end = next((i for i in range(start, len(lines)) if lines[i].startswith(last)), None)
            if end is None:
                raise KeyError(f"No line of {relative} after {first!r} starts with {last!r}.")
            shown.append("\n".join(lines[start : end + 1]))
        elif part in functions:
            start, end = functions[part]
            shown.append("\n".join(lines[start:end]))
        else:
            raise KeyError(f"No function {part!r} in {relative}.")
    return f"`{relative}`:\n\n```python\n" + "\n\n...\n\n".join(shown) + "\n```"


def signatures(relative: str, names: tuple[str, ...]) -> str:
    """The ``def`` lines of these functions of a Python file, as a Markdown list (read with ``ast``)."""
    tree = ast.parse((REPO_ROOT / relative).read_text())
    found = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    missing = [name for name in names if name not in found]
    if missing:
        raise KeyError(f"No function {', '.join(missing)} in {relative}.")
    lines = []
    for name in names:
        node = found[name]
        returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
        lines.append(f"- `{name}({ast.unparse(node.args)}){returns}`")
    return "\n".join(lines)
