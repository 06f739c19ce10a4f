"""The generated documentation is up to date with the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_module_index_of_architecture_doc_is_current():
    result = _tool("tools/module_index.py", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_settings_reference_is_current():
    result = _tool("tools/settings_table.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "docs" / "settings.md").read_text()
