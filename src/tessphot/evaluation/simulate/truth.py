"""The simulator's truth file: its layout, writing it and reading it back.

The layout is described at :func:`tessphot.evaluation.simulate.sector.simulate_sector`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from tessphot.evaluation.simulate import variability
from tessphot.evaluation.simulate.systematics import COMPONENTS
from tessphot.paths import atomic_path

#: Version of the truth-file layout.
TRUTH_FORMAT_VERSION = 1
#: Truth backgrounds of regions larger than this many pixels are stored binned.
TRUTH_BACKGROUND_FULL_MAX = 1024 * 1024
TRUTH_BACKGROUND_BINNING = 8
#: Per-cadence arrays of the ``time`` group.
TIME_ARRAYS = ("tstart", "tstop", "tmid", "barycorr", "ffiindex", "quality")
#: The group of the systematics (present only when they were simulated) and its datasets.
SYSTEMATICS_GROUP = "systematics"
SYSTEMATICS_ARRAYS = ("basis", "coefficients", "additive_map", "additive_profile")
#: The group of the PRF differences (present only when they were simulated), its per-star
#: datasets and its per-cadence one.
PRF_GROUP = "prf_differences"
PRF_STAR_ARRAYS = ("width", "ellipticity", "angle", "halo_fraction", "matrix")
PRF_CADENCE_ARRAYS = ("focus",)
#: Columns of the ``stars`` table.
STAR_COLUMNS = (
    ("starid", "i8"),
    ("ra_j2000", "f8"),
    ("dec_j2000", "f8"),
    ("ra", "f8"),
    ("dec", "f8"),
    ("pmra", "f8"),
    ("pmdec", "f8"),
    ("tmag", "f8"),
    ("teff", "f8"),
    ("flux", "f8"),
    ("row", "f8"),
    ("col", "f8"),
)


def bin_pixels(image: np.ndarray, binning: int) -> np.ndarray:
    """Average an image over ``binning`` x ``binning`` blocks (a partial edge is dropped).

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.
    binning : int
        Block size [px]; 1 returns ``image`` itself.

    Returns
    -------
    numpy.ndarray
        The binned image.
    """
    if binning == 1:
        return image
    ny, nx = image.shape[0] // binning, image.shape[1] // binning
    image = image[: ny * binning, : nx * binning]
    return image.reshape(ny, binning, nx, binning).mean(axis=(1, 3))


def background_binning(shape: tuple[int, int]) -> int:
    """Binning of the truth background of a region of ``shape`` pixels."""
    return 1 if shape[0] * shape[1] <= TRUTH_BACKGROUND_FULL_MAX else TRUTH_BACKGROUND_BINNING


@contextmanager
def atomic_truth(path: Path) -> Iterator[str]:
    """A temporary file beside ``path`` that replaces it when the block ends without error.

    Parameters
    ----------
    path : pathlib.Path
        The truth file to write.

    Yields
    ------
    str
        The temporary file to write to (removed on an error).
    """
    with atomic_path(path, suffix="") as tmp:
        yield str(tmp)


def write_star_table(h5: h5py.File, field_, flux0: np.ndarray, signals) -> None:
    """Write the ``stars`` table and the ``signals`` of a star field.

    Parameters
    ----------
    h5 : h5py.File
        The open truth file.
    field_ : StarField
        The simulated stars.
    flux0 : numpy.ndarray
        Mean flux of every star [e-/s].
    signals : Signals
        The injected signal of every star.
    """
    table = np.zeros(len(field_), dtype=list(STAR_COLUMNS))
    for name in table.dtype.names:
        table[name] = flux0 if name == "flux" else getattr(field_, name)
    ds = h5.create_dataset("stars", data=table)
    ds.attrs["description"] = (
        "ra/dec at the sector epoch, *_j2000 at the TIC epoch [deg]; pm [mas/yr]; flux: mean "
        "flux [e-/s]; row/col: reference position without jitter [science-area px]"
    )
    sig = h5.create_dataset("signals", data=signals.table)
    sig.attrs["kinds"] = json.dumps(variability.KIND_NAMES)


def write_times(h5: h5py.File, cadences, tmid: np.ndarray, barycorr: np.ndarray) -> None:
    """Write the ``time`` group: the per-cadence arrays of :data:`TIME_ARRAYS`."""
    tgrp = h5.create_group("time")
    tgrp["tstart"] = cadences.tstart
    tgrp["tstop"] = cadences.tstop
    tgrp["tmid"] = tmid
    tgrp["barycorr"] = barycorr
    tgrp["ffiindex"] = cadences.ffiindex
    tgrp["quality"] = cadences.quality
    tgrp.attrs["unit"] = "TJD = BJD - 2457000 on the spacecraft clock (no barycentric correction)"


def write_jitter(h5: h5py.File, shifts: np.ndarray, centre: tuple[float, float]) -> None:
    """Write the ``jitter`` array (row shift, column shift, rotation) and its centre."""
    jit = h5.create_dataset("jitter", data=shifts)
    jit.attrs["columns"] = ["row_shift_px", "column_shift_px", "rotation_rad"]
    jit.attrs["centre"] = centre


def write_systematics(h5: h5py.File, applied, origin: tuple[int, int]) -> None:
    """Write the ``systematics`` group of a simulation with systematics.

    Parameters
    ----------
    h5 : h5py.File
        The open truth file.
    applied : AppliedSystematics
        The systematics as applied
        (:class:`tessphot.evaluation.simulate.systematics.AppliedSystematics`).
    origin : tuple of int
        Science-area (row, column) of the region's first pixel.
    """
    grp = h5.create_group(SYSTEMATICS_GROUP)
    grp.attrs["components"] = list(COMPONENTS)
    grp.attrs["model"] = json.dumps(
        {k: v for k, v in vars(applied.model).items() if k not in ("waves", "dump_levels")}
    )
    grp.attrs["description"] = (
        "flux (the truth's, as rendered) = intrinsic flux x (1 + m), m = coefficients @ "
        "basis.T (cadence, star); the image also holds additive_map [e-/s/px] x "
        "additive_profile (cadence), not in background"
    )
    grp["basis"] = applied.basis
    grp["basis"].attrs["columns"] = list(COMPONENTS)
    grp["coefficients"] = applied.coefficients
    grp["coefficients"].attrs["columns"] = list(COMPONENTS)
    grp.create_dataset(
        "additive_map", data=applied.additive_map, compression="gzip", compression_opts=1
    )
    grp["additive_map"].attrs["origin"] = origin
    grp["additive_map"].attrs["unit"] = "e-/s/px"
    grp["additive_profile"] = applied.additive_profile


def read_systematics(h5: h5py.File) -> dict[str, np.ndarray] | None:
    """The ``systematics`` group of an open truth file, or None without systematics.

    Returns
    -------
    dict or None
        ``basis`` (cadence, component), ``coefficients`` (star, component),
        ``additive_map`` (y, x) [e-/s/px], ``additive_profile`` (cadence), ``origin``
        (science-area row, column of the map's first pixel) and ``components`` (names).
    """
    if SYSTEMATICS_GROUP not in h5:
        return None
    grp = h5[SYSTEMATICS_GROUP]
    out: dict = {name: grp[name][()] for name in SYSTEMATICS_ARRAYS}
    out["origin"] = tuple(int(v) for v in grp["additive_map"].attrs["origin"])
    out["components"] = tuple(str(v) for v in grp.attrs["components"])
    return out


def write_prf_differences(h5: h5py.File, applied) -> None:
    """Write the ``prf_differences`` group of a simulation with PRF differences.

    Parameters
    ----------
    h5 : h5py.File
        The open truth file.
    applied : AppliedPRFDifferences
        The differences as rendered
        (:class:`tessphot.evaluation.simulate.prf_differences.AppliedPRFDifferences`).
    """
    grp = h5.create_group(PRF_GROUP)
    grp.attrs["settings"] = json.dumps(asdict(applied.settings))
    grp.attrs["model"] = json.dumps(applied.description())
    grp.attrs["description"] = (
        "star k at reference position p0 rendered at cadence t with flux F (the truth's flux, "
        "the total) = (1 - halo_fraction[k]) F PRF'(d) + halo_fraction[k] F halo(d), d the "
        "offset (row, column) from the star; PRF'(d) = PRF(B^-1 d) / |det B| of the model "
        "prf_model, B = focus[t] matrix[k], matrix = width (I + ellipticity Q(angle)), angle "
        "[deg] from the column axis towards the row axis, all at p0 (rendered from tables "
        "transformed at model.node_rows x model.node_cols, interpolated bilinearly); halo: "
        "model.halo, zero beyond its radius; light off the region is lost"
    )
    for name in ("width", "ellipticity", "angle", "halo_fraction"):
        grp[name] = getattr(applied, name)
    grp["angle"].attrs["unit"] = "deg"
    grp["matrix"] = applied.matrices
    grp["matrix"].attrs["axes"] = ["star", "row", "column"]
    grp["focus"] = applied.focus


def read_prf_differences(h5: h5py.File) -> dict | None:
    """The ``prf_differences`` group of an open truth file, or None without differences.

    Returns
    -------
    dict or None
        Per star ``width``, ``ellipticity``, ``angle`` [deg], ``halo_fraction``, ``matrix``
        (star, 2, 2); per cadence ``focus``; ``settings`` (``[simulate.prf]``), ``field``
        (:class:`~tessphot.evaluation.simulate.prf_field.PRFField` as a dict), ``halo``
        (:class:`~tessphot.evaluation.simulate.prf_halo.HaloProfile` as a dict, or None) and
        ``node_rows``, ``node_cols`` (None when only the halo differs).
    """
    if PRF_GROUP not in h5:
        return None
    grp = h5[PRF_GROUP]
    out: dict = {name: grp[name][()] for name in (*PRF_STAR_ARRAYS, *PRF_CADENCE_ARRAYS)}
    out["settings"] = json.loads(grp.attrs["settings"])
    model = json.loads(grp.attrs["model"])
    out["field"] = {k: tuple(v) if isinstance(v, list) else v for k, v in model["field"].items()}
    out.update({k: model[k] for k in ("halo", "node_rows", "node_cols")})
    return out


@dataclass
class TruthFrames:
    """The per-cadence datasets of a truth file, filled one cadence at a time."""

    flux: h5py.Dataset
    row: h5py.Dataset
    col: h5py.Dataset
    background: h5py.Dataset
    binning: int

    @classmethod
    def create(
        cls,
        h5: h5py.File,
        n_cadences: int,
        n_stars: int,
        shape: tuple[int, int],
        origin: tuple[int, int],
    ) -> TruthFrames:
        """Create the datasets ``flux``, ``row``, ``col`` and ``background`` of a truth file.

        Parameters
        ----------
        h5 : h5py.File
            The open truth file.
        n_cadences, n_stars : int
            Numbers of cadences and of stars.
        shape : tuple of int
            Shape of the simulated region [px].
        origin : tuple of int
            Science-area (row, column) of the region's first pixel.

        Returns
        -------
        TruthFrames
        """
        binning = background_binning(shape)
        bshape = (shape[0] // binning, shape[1] // binning)
        chunks = (min(16, n_cadences), max(1, min(n_stars, 8192)))
        flux = h5.create_dataset("flux", (n_cadences, n_stars), "f8", chunks=chunks)
        row = h5.create_dataset("row", (n_cadences, n_stars), "f4", chunks=chunks)
        col = h5.create_dataset("col", (n_cadences, n_stars), "f4", chunks=chunks)
        background = h5.create_dataset(
            "background",
            (n_cadences, *bshape),
            "f4",
            chunks=(1, *bshape),
            compression="gzip",
            compression_opts=1,
            shuffle=True,
        )
        background.attrs["binning"] = binning
        background.attrs["origin"] = origin
        return cls(flux, row, col, background, binning)

    def write(self, k: int, fluxes, rows, cols, sky: np.ndarray) -> None:
        """Store cadence ``k``: the stars' fluxes and positions and the (binned) sky."""
        self.flux[k] = fluxes
        self.row[k] = rows
        self.col[k] = cols
        self.background[k] = bin_pixels(sky, self.binning)


def read_truth(path: Path | str) -> dict[str, np.ndarray | dict]:
    """Everything in a truth file, in memory (meant for the small simulations of tests).

    Parameters
    ----------
    path : path-like
        The truth file.

    Returns
    -------
    dict
        ``stars``, ``signals``, ``flux``, ``row``, ``col`` (cadence, star), ``background``,
        ``jitter``, the time arrays (``tstart``, ``tstop``, ``tmid``, ``barycorr``,
        ``ffiindex``, ``quality``), ``systematics`` (:func:`read_systematics`: None
        without them), ``prf_differences`` (:func:`read_prf_differences`: None without
        them) and ``attrs`` (the file's attributes).
    """
    with h5py.File(path, "r") as h5:
        out: dict = {
            name: h5[name][()]
            for name in ("stars", "signals", "flux", "row", "col", "background", "jitter")
        }
        out.update({name: h5["time"][name][()] for name in TIME_ARRAYS})
        out["systematics"] = read_systematics(h5)
        out["prf_differences"] = read_prf_differences(h5)
        out["attrs"] = dict(h5.attrs)
    return out
