"""tessphot: light curves of every star in TESS full-frame images.

:func:`read_lightcurve` reads a light curve written by tessphot as a lightkurve object
(loaded at first use, so that ``import tessphot`` stays light).
"""

from __future__ import annotations

from typing import Any

from tessphot.version import PIPELINE_NAME, __version__

__all__ = ["PIPELINE_NAME", "__version__", "read_lightcurve"]


def __getattr__(name: str) -> Any:
    """The public names of higher layers, imported at first use (PEP 562)."""
    if name == "read_lightcurve":
        from tessphot.lightcurve.read import read_lightcurve

        return read_lightcurve
    raise AttributeError(f"module 'tessphot' has no attribute {name!r}")
