#!/usr/bin/env python3
"""MPI entry point, ``mpiexec -n N python run_tessphot_mpi.py ...``: ``tessphot run-mpi``.

Same as ``tessphot run-mpi``, with the flags of ``run_tessphot.py``.
"""

import sys

from tessphot.cli import main

if __name__ == "__main__":
    sys.exit(main(["run-mpi", *sys.argv[1:]]))
