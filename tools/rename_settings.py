"""Rename the code's accesses to the old flat photometry settings (issue 13).

The photometry settings moved from flat keys of ``[photometry]`` (``linpsf_fit_radius``) to
one table per method (``[photometry.linpsf] fit_radius``); the mapping is
:data:`tessphot.config.legacy.PHOTOMETRY_KEYS`. This script rewrites, in the given files
(default: ``src/tessphot`` but ``config/``, and ``tests``):

- attribute accesses on settings objects: ``self.settings.linpsf_fit_radius``,
  ``s.linpsf_fit_radius`` (``s = self.settings``), ``phot.settings.halo_auto_tmag``,
  ``photometry_settings(x).spill_method`` -> ``....linpsf.fit_radius`` etc.;
- names in docstrings and comments written as ````linpsf_fit_radius```` ->
  ````linpsf.fit_radius```` (````fit_radius```` in the method's own module);
- in tests, header records ``"photometry.psf_positions"`` -> ``"photometry.psf.positions"``
  and loops over ``PhotometrySettings.__dataclass_fields__`` -> ``PhotometrySettings.keys()``
  (the dotted keys of every table).

Log messages and the settings given as mappings (old keys still work, with a
DeprecationWarning) are left alone. Run from the repository root::

    python tools/rename_settings.py [--check] [FILE_OR_FOLDER ...]

``--check`` changes nothing and exits with 1 when something would change. The files changed
are formatted with ``ruff format`` afterwards (a longer access may need a new line break).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tessphot.config.legacy import PHOTOMETRY_KEYS  # noqa: E402

#: Receivers of settings attributes: ``settings``, ``s``, ``x.settings``, a call of
#: ``photometry_settings(...)``.
RECEIVER = r"(?:\b[A-Za-z_][A-Za-z_0-9]*\.settings|\bsettings|\bs|\bphotometry_settings\([^()]*\))"
#: Folders searched by default, and the one left out (the settings' own code).
DEFAULT_PATHS = ("src/tessphot", "tests")
EXCLUDED = ROOT / "src" / "tessphot" / "config"
#: The table whose keys a module's docstrings name unqualified (the method's own module).
OWN_TABLE = {
    "aperture": "aperture",
    "linpsf": "linpsf",
    "psf": "psf",
    "halo": "halo",
    "run": "choice",
}


def _rules() -> list[tuple[re.Pattern, str]]:
    names = "|".join(sorted(PHOTOMETRY_KEYS, key=len, reverse=True))
    return [
        (re.compile(rf"({RECEIVER})\.({names})\b"), "access"),
        (re.compile(rf"``({names})(?=\W)"), "doc"),
        (re.compile(rf"([\"'])photometry\.({names})\1"), "record"),
        (re.compile(r"\bPhotometrySettings\.__dataclass_fields__\b"), "fields"),
    ]


def _new(old: str) -> str:
    table, key = PHOTOMETRY_KEYS[old]
    return f"{table}.{key}"


def _doc_name(old: str, module: str) -> str:
    """An old key as named in a docstring of ``module``: its own table's keys unqualified."""
    table, key = PHOTOMETRY_KEYS[old]
    return key if OWN_TABLE.get(module) == table else f"{table}.{key}"


def rename(text: str, module: str = "") -> str:
    """The text (of the module named ``module``, e.g. ``linpsf``) with the old keys renamed."""
    for pattern, kind in _rules():
        if kind == "access":
            text = pattern.sub(lambda m: f"{m.group(1)}.{_new(m.group(2))}", text)
        elif kind == "doc":
            text = pattern.sub(lambda m: f"``{_doc_name(m.group(1), module)}", text)
        elif kind == "record":
            text = pattern.sub(
                lambda m: f"{m.group(1)}photometry.{_new(m.group(2))}{m.group(1)}", text
            )
        else:
            text = pattern.sub("PhotometrySettings.keys()", text)
    return text


def python_files(paths: list[str]) -> Iterator[Path]:
    """The Python files under the given files and folders (but the settings' own code)."""
    for name in paths:
        path = (ROOT / name) if not Path(name).is_absolute() else Path(name)
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            if EXCLUDED not in file.resolve().parents and file.resolve() != Path(__file__):
                yield file


def main(argv: list[str] | None = None) -> int:
    """Rename in place (or only report with ``--check``); the number of files changed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=list(DEFAULT_PATHS))
    parser.add_argument("--check", action="store_true", help="report only; exit 1 if stale")
    args = parser.parse_args(argv)
    changed: list[Path] = []
    for file in python_files(args.paths):
        text = file.read_text()
        new = rename(text, file.stem.removeprefix("test_"))
        if new != text:
            changed.append(file)
            print(f"{'would rename in' if args.check else 'renamed in'} {file.relative_to(ROOT)}")
            if not args.check:
                file.write_text(new)
    if changed and not args.check:
        subprocess.run(["ruff", "format", "-q", *map(str, changed)], check=False)
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
