"""The ``tessphot`` command: its parser and :func:`main`, the entry point.

Each subcommand lives in its own module (:mod:`tessphot.cli.simulate`, ``demo``, ``catalog``,
``prepare``, ``todo``, ``run``, ``ephemeris``, ``prf_download``), which adds its parser and
runs it; the stages themselves are imported only when a command runs, so that start-up and
``--help`` stay fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tessphot.cli.catalog import add_parsers as add_catalog
from tessphot.cli.common import EXIT_ERROR, EXIT_INTERRUPTED, SettingsError, command_name
from tessphot.cli.correct import add_parser as add_correct
from tessphot.cli.demo import add_parser as add_demo
from tessphot.cli.ephemeris import add_parser as add_ephemeris
from tessphot.cli.prepare import add_parser as add_prepare
from tessphot.cli.prf_download import add_parser as add_prf_download
from tessphot.cli.report import add_parser as add_report
from tessphot.cli.run import add_parsers as add_run
from tessphot.cli.simulate import add_parser as add_simulate
from tessphot.cli.todo import add_parser as add_todo
from tessphot.io.errors import TessphotError
from tessphot.logs import setup_logging
from tessphot.version import __version__

log = logging.getLogger("tessphot")

#: The subcommands' parsers, in the order ``--help`` lists them.
SUBCOMMANDS = (
    add_simulate,
    add_demo,
    add_catalog,
    add_prepare,
    add_todo,
    add_run,
    add_correct,
    add_report,
    add_ephemeris,
    add_prf_download,
)
#: Errors reported as one line ``tessphot COMMAND: error: MESSAGE`` with exit code 1.
REPORTED_ERRORS = (SettingsError, TessphotError, ValueError, OSError, RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tessphot`` command."""
    parser = argparse.ArgumentParser(
        prog="tessphot",
        description=(
            "tessphot turns TESS full-frame images, target pixel files and TESScut cutouts "
            "into light curves of every star. Stages: catalog -> prepare -> todo -> run "
            "('tessphot COMMAND --help' for each). Try 'tessphot demo' first."
        ),
    )
    parser.add_argument("--version", action="version", version=f"tessphot {__version__}")
    # The common options are accepted before the command too (tessphot -q simulate ...).
    parser.add_argument(
        "-d", "--debug", dest="global_debug", action="store_true", help="print debug messages"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        dest="global_quiet",
        action="store_true",
        help="print only warnings and errors",
    )
    parser.add_argument(
        "--settings", dest="global_settings", metavar="FILE", help="TOML settings file"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def _subcommand(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of one subcommand of the ``tessphot`` parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    raise KeyError(command)


def main(
    argv: Sequence[str] | None = None,
    *,
    script: str | None = None,
    description: str | None = None,
    **defaults: Any,
) -> int:
    """Entry point of the ``tessphot`` command; returns the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: the command line's).
    script : str, optional
        For an original script (``run_tessphot.py``): its name, used instead of
        ``tessphot COMMAND`` in the usage, the help and the messages. ``argv`` then starts
        with the subcommand the script runs.
    description : str, optional
        The script's help text (default: the subcommand's).
    **defaults
        Option values of the script that differ from the subcommand's.
    """
    parser = build_parser()
    if script is not None:
        if not argv:
            raise ValueError("a script's arguments start with its subcommand")
        sub = _subcommand(parser, argv[0])
        sub.prog = script
        sub.description = description or sub.description
        sub.set_defaults(script=script, **defaults)
    args = parser.parse_args(argv)
    args.debug = args.debug or args.global_debug
    args.quiet = args.quiet or args.global_quiet
    args.settings = args.settings or args.global_settings
    setup_logging(debug=args.debug, quiet=args.quiet)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except REPORTED_ERRORS as err:
        log.debug("Traceback:", exc_info=True)
        print(f"{command_name(args)}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{command_name(args)}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
