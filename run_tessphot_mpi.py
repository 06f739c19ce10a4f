#!/usr/bin/env python3
"""MPI entry point, ``mpiexec -n N python run_tessphot_mpi.py ...``: ``tessphot run-mpi``.

Same as ``tessphot run-mpi``, with the flags of ``run_tessphot.py``; like the original's
script it runs every matching task unless ``--starid``, ``--priority`` or ``--random``
selects some.
"""

import sys

from tessphot.cli import main

DESCRIPTION = (
    "The photometry of the tasks of INPUT/todo.sqlite over MPI (the original TASOC entry "
    "point; same as 'tessphot run-mpi'): mpiexec -n N python run_tessphot_mpi.py [options] "
    "[INPUT], N >= 2. Rank 0 owns todo.sqlite and hands out the tasks, ranks 1 to N-1 do the "
    "photometry. Every matching task is run unless --starid, --priority or --random selects "
    "some. Needs mpi4py and an MPI library: pip install 'tessphot[mpi]' and e.g. Open MPI "
    "(Debian: apt install openmpi-bin libopenmpi-dev)."
)

if __name__ == "__main__":
    sys.exit(
        main(
            ["run-mpi", *sys.argv[1:]],
            script="run_tessphot_mpi.py",
            description=DESCRIPTION,
            all_by_default=True,
        )
    )
