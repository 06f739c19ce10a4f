"""The built-in demo: a small simulated sector run through every stage, in a folder of its own.

:mod:`tessphot.demo.run` holds the stages, :mod:`tessphot.demo.folder` the folder's manifest
(only files the demo made are ever removed).
"""

from __future__ import annotations

from tessphot.demo.folder import DEMO_MARKER, DemoFolder, DemoFolderError
from tessphot.demo.run import ensure_demo_input, ensure_demo_ready, prepare_simulated, run_demo

__all__ = [
    "DEMO_MARKER",
    "DemoFolder",
    "DemoFolderError",
    "ensure_demo_input",
    "ensure_demo_ready",
    "prepare_simulated",
    "run_demo",
]
