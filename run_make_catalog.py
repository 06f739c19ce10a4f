#!/usr/bin/env python3
"""Original TASOC entry point, kept for compatibility: same as ``tessphot catalog``."""

import sys

from tessphot.cli import main

if __name__ == "__main__":
    sys.exit(main(["catalog", *sys.argv[1:]], script="run_make_catalog.py"))
