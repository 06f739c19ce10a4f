"""The ``tessphot`` command line: one subcommand per stage, one module per subcommand.

Run ``tessphot --help`` or ``tessphot COMMAND --help`` for the options. :func:`main` is the
entry point (also ``python -m tessphot.cli``); :mod:`tessphot.cli.common` holds the options
every command shares, the exit codes and the loading of the settings.
"""

from __future__ import annotations

from tessphot.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from tessphot.cli.main import build_parser, main

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]
