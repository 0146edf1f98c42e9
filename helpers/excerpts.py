"""Show the lines of a CloudFormation template that make a lesson, read from the file itself.

``excerpt("function", "Resources.Function.Properties.FileSystemConfigs")`` returns that key's block of
``cloudformation/function.yaml`` (with the comment lines right above it) as a fenced YAML block for
``IPython.display.Markdown``: the notebook shows what is deployed, not a copy that can drift from it.
"""

from __future__ import annotations

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
