#!/usr/bin/env python3
"""Original TASOC entry point, kept for compatibility: same as ``tessphot run``."""

import sys

from tessphot.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]], script="run_tessphot.py"))
