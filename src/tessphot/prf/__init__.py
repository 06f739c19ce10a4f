"""Pixel response function (PRF) models and the download of the SPOC ones.

A PRF gives the fraction of a star's flux that falls into a pixel, as a function of the
offset between the pixel centre and the star. Two models share one rendering engine
(:class:`PRFModel`, :mod:`tessphot.prf.models`):

- :class:`SpocPRF` (:mod:`tessphot.prf.spoc`): the real SPOC PRF models, 25 tables per CCD
  interpolated bilinearly between CCD positions;
- :class:`AnalyticPRF` (:mod:`tessphot.prf.analytic`): a TESS-like model without files.

:func:`load_prf` (:mod:`tessphot.prf.load`) gives the model a ``prf_dir`` setting names;
:mod:`tessphot.prf.cache` says where the models are (``"archive"``, the download cache),
:mod:`tessphot.prf.download` downloads them from MAST. The names below are imported lazily,
so that ``import tessphot.prf.cache`` stays cheap (no numpy, scipy or astropy).
"""

from __future__ import annotations

_LAZY = {
    "OVERSAMPLE": "tessphot.prf.models",
    "HALF_WIDTH": "tessphot.prf.models",
    "TABLE_SIZE": "tessphot.prf.models",
    "TABLE_CENTRE": "tessphot.prf.models",
    "PRFModel": "tessphot.prf.models",
    "prf_images": "tessphot.prf.boxes",
    "prf_sums": "tessphot.prf.boxes",
    "SpocPRF": "tessphot.prf.spoc",
    "AnalyticPRF": "tessphot.prf.analytic",
    "load_prf": "tessphot.prf.load",
    "ANALYTIC": "tessphot.prf.cache",
    "ARCHIVE": "tessphot.prf.cache",
    "prf_epoch": "tessphot.prf.cache",
    "spoc_prf_folder": "tessphot.prf.cache",
    "unprepared_prf_dir": "tessphot.prf.cache",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
