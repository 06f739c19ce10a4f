#!/usr/bin/env python3
"""Original TASOC entry point, kept for compatibility: same as ``tessphot todo``."""

import sys

from tessphot.cli import main

if __name__ == "__main__":
    sys.exit(main(["todo", *sys.argv[1:]], script="run_make_todo.py"))
