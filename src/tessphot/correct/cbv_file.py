"""The CBV file: cotrending basis vectors in FITS with a SPOC-like layout, and their plot.

The primary header has the SPOC CBV file's keywords that apply (``TELESCOP``, ``INSTRUME``,
``SECTOR``, ``TSTART``/``TSTOP``, ``DATE``, ``FILEVER``, ...) with ``ORIGIN`` and
``PROCVER`` naming tessphot. Each CBV set is one BINTABLE extension ``CBV.<cbv_area>``
(SPOC: ``CBV.single-scale.<camera>.<ccd>``) with columns ``TIME``, ``CADENCENO``, ``GAP``,
``VECTOR_1..N`` and ``SPIKE_1..M`` (SPOC puts its spikes into an extension of their own),
its header the set's metadata (``CAMERA``, ``CCD``, ``CBV_AREA``, ``CADENCE``, ``NSTARS``,
``NVECTORS``, ``NSPIKES``, ``THRESH``, singular values ``SV_i``, explained variance
``EXPVAR_i``, spike singular values ``SPSV_i``) and the ``[correct.cbv]`` settings as
``HIERARCH CBV <KEY>`` cards.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits

from tessphot.correct.cbv import CBVSet
from tessphot.paths import atomic_path
from tessphot.version import PIPELINE_NAME, __version__

#: Version of our CBV file format.
FILE_VERSION = "1.0"
#: Prefix of the extension names.
EXTNAME_PREFIX = "CBV."
#: Prefix of the settings cards.
SETTINGS_PREFIX = "CBV "
#: Plot size [in] per vector panel and resolution [dpi].
PANEL_SIZE = (10.0, 1.6)
DPI = 90


def _primary(sets: Sequence[CBVSet]) -> fits.PrimaryHDU:
    first = sets[0]
    times = np.concatenate([s.time[np.isfinite(s.time)] for s in sets])
    header = fits.Header()
    header["NEXTEND"] = (len(sets), "number of standard extensions")
    header["EXTNAME"] = ("PRIMARY", "name of extension")
    header["SIMDATA"] = (False, "file is based on simulated data")
    header["ORIGIN"] = (PIPELINE_NAME, "institution responsible for creating this file")
    header["DATE"] = (datetime.date.today().isoformat(), "file creation date.")
    if times.size:
        header["TSTART"] = (float(times.min()), "observation start time in TJD")
        header["TSTOP"] = (float(times.max()), "observation stop time in TJD")
    header["CREATOR"] = (f"{PIPELINE_NAME} correct", "program used to produce this file")
    header["PROCVER"] = (__version__, "SW version")
    header["FILEVER"] = (FILE_VERSION, "file format version")
    header["TELESCOP"] = ("TESS", "telescope")
    header["INSTRUME"] = ("TESS Photometer", "detector type")
    header["SECTOR"] = (first.sector, "Observing sector")
    return fits.PrimaryHDU(header=header)


def _table(cbvs: CBVSet) -> fits.BinTableHDU:
    columns = [
        fits.Column("TIME", "D", unit="JD - 2457000, days", disp="D14.7", array=cbvs.time),
        fits.Column("CADENCENO", "J", disp="I10", array=cbvs.cadenceno),
        fits.Column("GAP", "L", disp="L1", array=cbvs.gap),
    ]
    for name, values in (("VECTOR", cbvs.vectors), ("SPIKE", cbvs.spikes)):
        for j in range(values.shape[1]):
            columns.append(fits.Column(f"{name}_{j + 1}", "E", disp="F8.5", array=values[:, j]))
    hdu = fits.BinTableHDU.from_columns(columns, name=f"{EXTNAME_PREFIX}{cbvs.cbv_area}")
    header = hdu.header
    header["CAMERA"] = (cbvs.camera, "Camera number")
    header["CCD"] = (cbvs.ccd, "CCD chip number")
    header["CBV_AREA"] = (cbvs.cbv_area, "CBV area (100 camera + 10 CCD + ring)")
    header["CADENCE"] = (cbvs.cadence, "[s] cadence of the data")
    header["NSTARS"] = (cbvs.n_stars, "stars the vectors were made from")
    header["NVECTORS"] = (cbvs.n_vectors, "single-scale vectors")
    header["NSPIKES"] = (cbvs.n_spikes, "spike vectors")
    # FITS has no infinity or NaN: a set without vectors has no finite threshold.
    threshold = float(cbvs.threshold)
    header["THRESH"] = (
        threshold if math.isfinite(threshold) else str(threshold),
        "singular value threshold of significance",
    )
    for key, values in (("SV", cbvs.singular_values), ("EXPVAR", cbvs.explained_variance)):
        for j, value in enumerate(values):
            header[f"{key}_{j + 1}"] = float(value)
    for j, value in enumerate(cbvs.spike_singular_values):
        header[f"SPSV_{j + 1}"] = float(value)
    for key, value in cbvs.settings.items():
        header[f"HIERARCH {SETTINGS_PREFIX}{key.upper()}"] = value
    return hdu


def write_cbv(path: str | os.PathLike, cbvs: CBVSet | Sequence[CBVSet]) -> Path:
    """Write one or several CBV sets into a FITS file (atomically).

    Parameters
    ----------
    path : path-like
        The file (replaced if it exists).
    cbvs : CBVSet or sequence of CBVSet
        The sets, one extension each (distinct ``cbv_area``).

    Returns
    -------
    Path
        The file written.
    """
    sets = [cbvs] if isinstance(cbvs, CBVSet) else list(cbvs)
    if not sets:
        raise ValueError("no CBV set to write")
    hdus = fits.HDUList([_primary(sets), *(_table(s) for s in sets)])
    with atomic_path(path, suffix=".fits") as tmp:
        hdus.writeto(tmp, checksum=True)
    return Path(path)


def _series(header: fits.Header, key: str) -> np.ndarray:
    values, j = [], 1
    while f"{key}_{j}" in header:
        values.append(header[f"{key}_{j}"])
        j += 1
    return np.asarray(values, dtype=float)


def _columns(data: fits.FITS_rec, name: str, n: int) -> np.ndarray:
    if n == 0:
        return np.empty((len(data), 0))
    return np.column_stack([np.asarray(data[f"{name}_{j + 1}"], float) for j in range(n)])


def _set(hdu: fits.BinTableHDU, sector: int) -> CBVSet:
    header, data = hdu.header, hdu.data
    settings = {
        key[len(SETTINGS_PREFIX) :].lower(): value
        for key, value in header.items()
        if key.startswith(SETTINGS_PREFIX)
    }
    return CBVSet(
        cadenceno=np.asarray(data["CADENCENO"], np.int64),
        time=np.asarray(data["TIME"], float),
        vectors=_columns(data, "VECTOR", header["NVECTORS"]),
        spikes=_columns(data, "SPIKE", header["NSPIKES"]),
        gap=np.asarray(data["GAP"], bool),
        sector=sector,
        camera=header["CAMERA"],
        ccd=header["CCD"],
        cadence=float(header["CADENCE"]),
        cbv_area=header["CBV_AREA"],
        n_stars=header["NSTARS"],
        singular_values=_series(header, "SV"),
        explained_variance=_series(header, "EXPVAR"),
        threshold=float(header["THRESH"]),  # float("inf") from the text "inf"
        spike_singular_values=_series(header, "SPSV"),
        settings=settings,
    )


def read_cbvs(path: str | os.PathLike) -> list[CBVSet]:
    """Every CBV set of a file written by :func:`write_cbv`.

    Parameters
    ----------
    path : path-like
        The file.
    """
    with fits.open(path) as hdus:
        sector = hdus[0].header["SECTOR"]
        return [_set(hdu, sector) for hdu in hdus[1:] if hdu.name.startswith(EXTNAME_PREFIX)]


def read_cbv(path: str | os.PathLike, *, cbv_area: int | None = None) -> CBVSet:
    """One CBV set of a file written by :func:`write_cbv`.

    Parameters
    ----------
    path : path-like
        The file.
    cbv_area : int, optional
        Which set (None: the file's only one).

    Raises
    ------
    KeyError
        When the file has no such set, or several and ``cbv_area`` is not given.
    """
    sets = read_cbvs(path)
    if cbv_area is not None:
        sets = [s for s in sets if s.cbv_area == cbv_area]
    if len(sets) != 1:
        raise KeyError(f"{path}: {len(sets)} CBV sets match cbv_area={cbv_area}")
    return sets[0]


def plot_cbvs(cbvs: CBVSet, path: str | os.PathLike) -> Path:
    """A PNG of every vector (and spike vector) of a set against time.

    Parameters
    ----------
    cbvs : CBVSet
        The set.
    path : path-like
        The PNG file (written atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    design = cbvs.design("all")
    names = [f"VECTOR_{j + 1}" for j in range(cbvs.n_vectors)]
    names += [f"SPIKE_{j + 1}" for j in range(cbvs.n_spikes)]
    panels = max(1, len(names))
    fig, axes = plt.subplots(
        panels, 1, sharex=True, squeeze=False, figsize=(PANEL_SIZE[0], PANEL_SIZE[1] * panels)
    )
    for ax, name, column in zip(axes[:, 0], names, design.T, strict=False):
        ax.plot(cbvs.time, column, lw=0.7, color="k")
        ax.set_ylabel(name, fontsize=8)
    axes[0, 0].set_title(
        f"CBVs of sector {cbvs.sector}, camera {cbvs.camera}, CCD {cbvs.ccd}, "
        f"area {cbvs.cbv_area} ({cbvs.n_stars} stars)"
    )
    axes[-1, 0].set_xlabel("Time [TJD]")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    plt.close(fig)
    return Path(path)
