"""Write the module index of docs/architecture.md from the modules' docstrings.

Every module of ``src/tessphot`` with the first line of its docstring, grouped by package,
between the markers ``<!-- module index -->`` and ``<!-- end of module index -->``. Run from
the repository root after adding, removing or renaming a module::

    python tools/module_index.py          # rewrite the index in docs/architecture.md
    python tools/module_index.py --check  # exit 1 when the index is out of date
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "tessphot"
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- module index -->", "<!-- end of module index -->"


def module_index(package: Path = PACKAGE) -> str:
    """The Markdown index: per package, each module and its docstring's first line."""
    groups: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        relative = path.relative_to(package)
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        summary = doc.strip().splitlines()[0] if doc.strip() else ""
        folder = relative.parent.as_posix()
        group = "tessphot" if folder == "." else f"tessphot/{folder}"
        groups.setdefault(group, []).append(f"- `{relative.as_posix()}`: {summary}")
    blocks = [f"**{group}**\n\n" + "\n".join(lines) for group, lines in groups.items()]
    return "\n\n".join(blocks) + "\n"


def updated(text: str, index: str) -> str:
    """``text`` with the part between the markers replaced by ``index``."""
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n\n{index}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args()
    text = DOC.read_text()
    new = updated(text, module_index())
    if new == text:
        return 0
    if args.check:
        print(f"{DOC} is out of date: run python tools/module_index.py")
        return 1
    DOC.write_text(new)
    print(f"rewrote the module index of {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
