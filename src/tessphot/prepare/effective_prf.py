"""The effective PRF of a prepared region: measured when the file is finished, stored, read.

Once the average image is written (:func:`tessphot.prepare.reference.finish_part`), the PRF
model is corrected on its bright, isolated stars (:mod:`tessphot.prf.effective`) and the
result is stored in the group :data:`GROUP` (docs/hdf5-format.md): the corrected tables on
the model's nodes that span the region, the stars fitted and their residuals before and
after, the wings beyond the tables. :func:`read_effective_prf` gives it back as an
:class:`~tessphot.prf.effective.EffectivePRF` (:meth:`PreparedCube.effective_prf
<tessphot.prepare.cube.PreparedCube.effective_prf>`).

The average image's uncertainty is the reference frame's divided by the square root of the
number of frames averaged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import h5py
import numpy as np

from tessphot.config.prepare import EffectivePRFSettings
from tessphot.prepare.motion import apply_params
from tessphot.prepare.stars import RegionStars
from tessphot.prf.effective import EffectivePRF, EffectivePRFFit, measure_effective_prf
from tessphot.prf.effective_halo import HaloFit
from tessphot.prf.focus import FocusedPRF
from tessphot.prf.models import PRFModel
from tessphot.prf.motion_blur import MotionBlur, from_displacements
from tessphot.prf.star_halo import HaloShape, StarHalos

log = logging.getLogger(__name__)

#: The group of the effective PRF in the prepared file.
GROUP = "effective_prf"
#: Its subgroup of the change with time (focus, :mod:`tessphot.prepare.focus`).
FOCUS_GROUP = "focus"
#: Its subgroup of the stars' halos (:mod:`tessphot.prf.effective_halo`).
HALO_GROUP = "halos"
#: Columns of the group's ``stars`` table: the fitted stars.
STAR_COLUMNS = (
    "row",
    "col",
    "flux",
    "sky",
    "rms_model",
    "rms_effective",
    "chi2_model",
    "chi2_effective",
    "used",
    "check",
    "halo",
)


#: ``images_err.attrs['encoding']`` of uncertainties stored as half floats' 16-bit patterns,
#: as differences from the previous frame's within blocks of frames (prepared-data format 3).
HALF_DIFFERENCES = "half-differences"


def frame_uncertainty(h5: h5py.File, frame: int) -> np.ndarray:
    """One frame's uncertainties [e-/s], stored as values or as half-float differences.

    A prepared file's reader (``PreparedCube``) refuses unfinished files, so the stored
    encodings are decoded here (docs/hdf5-format.md): floats as they are; half floats'
    16-bit patterns, the first frame of a block as it is and the later ones as wrapping
    differences from the previous frame's (the cumulative sum over the block).
    """
    dataset = h5["images_err"]
    if dataset.attrs.get("encoding", "") != HALF_DIFFERENCES:
        return np.asarray(dataset[frame], dtype=np.float64)
    block = int(h5["images"].attrs["block_frames"])
    first = frame - frame % block
    stored = dataset[first : frame + 1]
    bits = np.sum(stored, axis=0, dtype=stored.dtype)  # the cumulative sum's last, wrapping
    return bits.view(np.float16).astype(np.float64)


def average_uncertainty(h5: h5py.File, reference: int, n_average: int) -> np.ndarray:
    """Uncertainty of the average image: the reference frame's over sqrt(frames averaged)."""
    return frame_uncertainty(h5, reference) / np.sqrt(max(n_average, 1))


def motion_blur(
    motion: np.ndarray,
    centre: tuple[float, float],
    node_rows: np.ndarray,
    node_cols: np.ndarray,
    *,
    frames: np.ndarray,
    region: tuple[float, float, float, float],
) -> MotionBlur | None:
    """The motion blur of the frames ``frames`` at PRF nodes, from the motion model.

    Parameters
    ----------
    motion : ndarray, shape (n_frames, 6)
        Each frame's motion (:func:`tessphot.prepare.motion.apply_params`).
    centre : (float, float)
        The motion's centre [science px].
    node_rows, node_cols : ndarray
        The nodes [science px]; each is moved from its nearest point of ``region``.
    frames : ndarray of bool
        The frames averaged.
    region : (row_min, row_max, col_min, col_max)
        The region [science px].

    Returns
    -------
    MotionBlur or None
        None when no averaged frame has a motion.
    """
    use = np.asarray(frames, dtype=bool) & np.all(np.isfinite(motion), axis=1)
    if not use.any():
        return None
    rows = np.clip(np.asarray(node_rows, dtype=float), region[0], region[1])
    cols = np.clip(np.asarray(node_cols, dtype=float), region[2], region[3])
    nodes = np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1).reshape(-1, 2)
    moved = np.stack([apply_params(p, nodes, centre) for p in motion[use]], axis=1)
    return from_displacements(moved)


def build_effective_prf(
    h5: h5py.File,
    stars: RegionStars,
    prf: PRFModel,
    settings: EffectivePRFSettings,
    *,
    reference: int,
    n_average: int,
    blur: Callable[[np.ndarray, np.ndarray], MotionBlur | None] | None = None,
) -> EffectivePRF | None:
    """Measure the effective PRF on the file's average image and store it (logged).

    Parameters
    ----------
    h5 : h5py.File
        The prepared file, open for writing, with ``sumimage``.
    stars : RegionStars
        The catalogued stars of the region.
    prf : PRFModel
        The model to correct.
    settings : EffectivePRFSettings
    reference : int
        The reference frame (its uncertainties give the average image's).
    n_average : int
        Frames in the average image.
    blur : callable, optional
        The average image's motion blur at nodes of the model (:func:`motion_blur`).

    Returns
    -------
    EffectivePRF or None
        None when disabled, without a catalog, with too few stars or not accepted.
    """
    if GROUP in h5:
        del h5[GROUP]
    if not settings.enabled:
        return None
    if stars.catalogued is None:
        log.info("Effective PRF not measured: no catalog")
        return None
    image = np.asarray(h5["sumimage"][()], dtype=np.float64)
    sigma = average_uncertainty(h5, reference, n_average)
    origin = tuple(int(v) for v in h5.attrs["origin"])
    fit = measure_effective_prf(image, sigma, origin, stars.catalogued, prf, settings, blur=blur)
    if fit is None:
        return None
    write_effective_prf(h5, fit, settings, starid=stars.starid)
    log.info("%s", fit.summary())
    return fit.prf if fit.accepted else None


def write_effective_prf(
    h5: h5py.File,
    fit: EffectivePRFFit,
    settings: EffectivePRFSettings,
    *,
    starid: np.ndarray | None = None,
):
    """Store a measured effective PRF in the group :data:`GROUP`.

    The stars' halos (subgroup :data:`HALO_GROUP`) only with the catalogued stars' ``starid``.
    """
    group = h5.create_group(GROUP)
    prf = fit.prf
    group.create_dataset("tables", data=prf.tables, compression="gzip", shuffle=True)
    group.create_dataset("node_rows", data=prf.node_rows)
    group.create_dataset("node_cols", data=prf.node_cols)
    group.attrs.update(
        {
            "name": prf.name,
            "short_name": prf.short_name,
            "base_name": prf.base_name,
            "base_analytic": prf.base_analytic,
            "settings": json.dumps(settings.as_dict()),
            "seconds": fit.seconds,
            "accepted": fit.accepted,
            **fit.quality,
        }
    )
    before, after = fit.before, fit.after
    table = np.rec.fromarrays(
        [
            after.rows,
            after.cols,
            after.flux,
            after.sky,
            before.rms,
            after.rms,
            before.chi2,
            after.chi2,
            fit.used,
            fit.check,
            _star_halos(fit),
        ],
        names=STAR_COLUMNS,
    )
    group.create_dataset("stars", data=table)
    wings = fit.wings
    if wings is not None:
        w = group.create_group("wings")
        for name in ("radius", "profile", "error"):
            w.create_dataset(name, data=getattr(wings, name))
        w.attrs.update(
            {
                "amplitude": wings.amplitude,
                "index": wings.index,
                "fraction": wings.fraction,
                "n_stars": wings.n_stars,
                "radius_min": wings.radius_min,
                "radius_max": wings.radius_max,
            }
        )
    if fit.halos is not None and starid is not None:
        _write_halos(group, fit.halos, np.asarray(starid)[fit.chosen])


def _star_halos(fit: EffectivePRFFit) -> np.ndarray:
    """Each fitted star's halo share as used (0: not measured)."""
    out = np.zeros(fit.used.size)
    if fit.halos is not None:
        out[fit.halos.measured] = fit.halos.shrunk()
    return out


def _write_halos(group: h5py.Group, halos: HaloFit, starid: np.ndarray) -> None:
    """The stars' halos: their shape, the measured stars' ``h`` and the trend.

    ``starid``: the TIC numbers of the stars ``halos.measured`` indexes.
    """
    h = group.create_group(HALO_GROUP)
    h.create_dataset("starid", data=starid[halos.measured].astype(np.int64))
    h.create_dataset("fraction", data=halos.shrunk())
    h.create_dataset("tmag", data=halos.tmag)
    h.create_dataset("fraction_fitted", data=halos.fraction)
    h.create_dataset("error", data=halos.error)
    h.create_dataset("trend_tmag", data=halos.trend_tmag)
    h.create_dataset("trend", data=halos.trend)
    h.attrs.update(
        {
            "core": halos.shape.core,
            "index": halos.shape.index,
            "radius": halos.shape.radius,
            "scatter": halos.scatter,
            "chi2": halos.chi2,
            "chi2_without": halos.chi2_without,
        }
    )


def read_star_halos(h5: h5py.File) -> StarHalos | None:
    """The stars' halos stored with the effective PRF (None: none, or the PRF not used)."""
    if GROUP not in h5 or HALO_GROUP not in h5[GROUP]:
        return None
    if not h5[GROUP].attrs.get("accepted", True):
        return None
    h = h5[GROUP][HALO_GROUP]
    a = h.attrs
    return StarHalos(
        HaloShape(float(a["core"]), float(a["index"]), float(a["radius"])),
        np.asarray(h["starid"][()], dtype=np.int64),
        np.asarray(h["fraction"][()], dtype=float),
        np.asarray(h["trend_tmag"][()], dtype=float),
        np.asarray(h["trend"][()], dtype=float),
        float(a.get("scatter", 0.0)),
    )


def read_effective_prf(h5: h5py.File) -> EffectivePRF | None:
    """The effective PRF stored in a prepared file.

    None when the file has none, or one not accepted (it fitted the stars left out of its
    fit no better than the model). A :class:`~tessphot.prf.focus.FocusedPRF` when its width
    changes significantly with time (the group's :data:`FOCUS_GROUP`).
    """
    if GROUP not in h5:
        return None
    group = h5[GROUP]
    attrs = group.attrs
    if not attrs.get("accepted", True):
        return None
    prf = EffectivePRF(
        group["tables"][()],
        group["node_rows"][()],
        group["node_cols"][()],
        str(attrs["name"]),
        str(attrs["short_name"]),
        base_name=str(attrs["base_name"]),
        base_analytic=bool(attrs["base_analytic"]),
    )
    scale = read_focus_scale(group)
    return prf if scale is None else FocusedPRF(prf, scale)


def read_focus_scale(group: h5py.Group) -> np.ndarray | None:
    """The stored width scale of every cadence; None without a significant change."""
    if FOCUS_GROUP not in group or not bool(group[FOCUS_GROUP].attrs["significant"]):
        return None
    return np.asarray(group[FOCUS_GROUP]["scale"][()], dtype=float)
