"""Read the simulator's truth file (layout: :func:`tessphot.evaluation.simulate.sector.simulate_sector`)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

#: Per-cadence arrays of the ``time`` group.
TIME_ARRAYS = ("tstart", "tstop", "tmid", "barycorr", "ffiindex", "quality")


def read_truth(path: Path | str) -> dict[str, np.ndarray | dict]:
    """Everything in a truth file, in memory (meant for the small simulations of tests).

    Returns
    -------
    dict
        ``stars``, ``signals``, ``flux``, ``row``, ``col`` (cadence, star), ``background``,
        ``jitter``, the time arrays (``tstart``, ``tstop``, ``tmid``, ``barycorr``,
        ``ffiindex``, ``quality``) and ``attrs`` (the file's attributes).
    """
    with h5py.File(path, "r") as h5:
        out: dict = {
            name: h5[name][()]
            for name in ("stars", "signals", "flux", "row", "col", "background", "jitter")
        }
        out.update({name: h5["time"][name][()] for name in TIME_ARRAYS})
        out["attrs"] = dict(h5.attrs)
    return out
