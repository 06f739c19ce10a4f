"""Finishing a prepared file: average image, reference frame, effective PRF, motion model.

Once every frame is written, the average of the good frames becomes ``sumimage``, the good
frame nearest the middle of the time span becomes the astrometric reference, the effective
PRF is measured on the average image (:mod:`tessphot.prepare.effective_prf`), and the
motion of every frame relative to the reference is fitted: from the reference stars'
centroids when enough were measured (calibrated with the effective PRF when there is one),
else from the per-frame WCS. The file is then marked complete, and the effective PRF's
change with time (focus) measured through its reader and stored
(:mod:`tessphot.prepare.focus`).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import h5py
import numpy as np

from tessphot.config.prepare import EffectivePRFSettings
from tessphot.prepare.centroid_calibration import calibrate_centroids
from tessphot.prepare.effective_prf import build_effective_prf, motion_blur, read_effective_prf
from tessphot.prepare.flags import BAD_QUALITY_BITS
from tessphot.prepare.focus import build_focus_change
from tessphot.prepare.motion import (
    MotionSettings,
    fit_motion,
    motion_from_wcs,
    wcs_from_string,
)
from tessphot.prepare.stars import RegionStars
from tessphot.prf import PRFModel, load_prf
from tessphot.prf.focus import FocusedPRF

log = logging.getLogger(__name__)

#: Attribute of a complete file whose effective PRF's change with time is still to measure.
FOCUS_PENDING = "focus_pending"


def finish_part(
    part: Path,
    mos: MotionSettings,
    stars: RegionStars,
    prf_dir: str | None,
    sumimage: np.ndarray,
    effective: EffectivePRFSettings | None = None,
) -> None:
    """Average image, reference frame, effective PRF and motion model; mark it complete.

    Then the effective PRF's change with time, when it was measured and accepted, and the
    motion again with the centroids calibrated with it.

    Parameters
    ----------
    part : pathlib.Path
        The ``.part`` file with every frame written.
    mos : MotionSettings
        The motion settings.
    stars : RegionStars
        The reference stars (catalogue positions and fluxes) and the catalogued stars near
        the region.
    prf_dir : str or None
        Folder of the PRF models (None: the analytic PRF).
    sumimage : numpy.ndarray
        The average image of the good frames.
    effective : EffectivePRFSettings, optional
        The effective PRF's settings (None: the defaults).

    Raises
    ------
    RuntimeError
        When no frame can serve as the astrometric reference.
    """
    effective = effective if effective is not None else EffectivePRFSettings()
    with h5py.File(part, "r+") as h5:
        if not h5.attrs.get("complete", False):
            _finish(h5, mos, stars, prf_dir, sumimage, effective)
    # Through the complete file's reader: the stars' boxes in blocks of frames.
    _finish_focus(part, mos, stars, effective)


def _finish(
    h5: h5py.File,
    mos: MotionSettings,
    stars: RegionStars,
    prf_dir: str | None,
    sumimage: np.ndarray,
    effective: EffectivePRFSettings,
) -> None:
    """:func:`finish_part` up to the complete file (the focus pending when it is to come)."""
    n_ref = stars.ref_rows.size
    quality = h5["quality"][:]
    times = h5["time"][:]
    if "sumimage" in h5:
        del h5["sumimage"]
    h5.create_dataset("sumimage", data=sumimage)
    wcs_strings = h5["wcs"][:].astype(str)
    good = ((quality & BAD_QUALITY_BITS) == 0) & (np.char.str_len(wcs_strings) > 0)
    if not good.any():
        raise RuntimeError(f"{h5.filename}: no good frame to serve as astrometric reference")
    mid = 0.5 * (times[0] + times[-1])
    ref = int(np.flatnonzero(good)[np.argmin(np.abs(times[good] - mid))])
    h5.attrs["reference_frame"] = ref
    origin, shape = tuple(h5.attrs["origin"]), tuple(h5.attrs["shape"])
    centre = (origin[0] + (shape[0] - 1) / 2, origin[1] + (shape[1] - 1) / 2)
    centroids = h5["centroids"][:] if n_ref else None
    by_stars = (
        centroids is not None
        and np.isfinite(centroids[ref]).all(axis=1).sum() >= mos.min_translation
    )
    prf = None
    if effective.enabled or (by_stars and mos.calibrate_centroids):
        h5_attrs = h5.attrs
        prf = load_prf(
            prf_dir, int(h5_attrs["sector"]), int(h5_attrs["camera"]), int(h5_attrs["ccd"])
        )

    jitter = partial(
        _jitter,
        centroids=centroids if by_stars else None,
        wcs_strings=wcs_strings,
        stars=stars,
        frame=(ref, centre, shape, origin),
        mos=mos,
    )
    measured = None
    source = "stars" if by_stars else "wcs"
    motion, model, rms = jitter(prf)
    if effective.enabled:
        # Measured on the average image, blurred by the motion of the frames in it.
        region = (origin[0], origin[0] + shape[0] - 1, origin[1], origin[1] + shape[1] - 1)
        measured = build_effective_prf(
            h5,
            stars,
            prf,
            effective,
            reference=ref,
            n_average=int(good.sum()),
            blur=lambda rows, cols: motion_blur(
                motion, centre, rows, cols, frames=good, region=region
            ),
        )
        if measured is not None and by_stars and mos.calibrate_centroids:
            motion, model, rms = jitter(measured)  # centroids calibrated with it
    _write_motion(h5, (motion, model, rms), source=source, centre=centre, ref=ref)
    h5.attrs[FOCUS_PENDING] = measured is not None
    h5.attrs["complete"] = True


def _finish_focus(
    part: Path, mos: MotionSettings, stars: RegionStars, effective: EffectivePRFSettings
) -> None:
    """The effective PRF's change with time, when pending, and the motion calibrated with it.

    The centroids' response follows the PRF's width: with a significant change the motion
    is fitted again on centroids calibrated cadence by cadence. A run killed before the end
    does it again.
    """
    with h5py.File(part, "r") as h5:
        if not h5.attrs.get(FOCUS_PENDING, False):
            return
    build_focus_change(part, effective, catalogued=stars.catalogued)
    with h5py.File(part, "r+") as h5:
        ds = h5["motion"]
        prf = read_effective_prf(h5)
        if (
            isinstance(prf, FocusedPRF)
            and ds.attrs["source"] == "stars"
            and mos.calibrate_centroids
        ):
            ref, centre = int(ds.attrs["reference_frame"]), tuple(ds.attrs["centre"])
            fitted = _jitter(
                prf,
                centroids=h5["centroids"][:],
                wcs_strings=h5["wcs"][:].astype(str),
                stars=stars,
                frame=(ref, centre, tuple(h5.attrs["shape"]), tuple(h5.attrs["origin"])),
                mos=mos,
            )
            _write_motion(h5, fitted, source="stars", centre=centre, ref=ref, focus=True)
        h5.attrs[FOCUS_PENDING] = False


def _write_motion(
    h5: h5py.File,
    fitted: tuple[np.ndarray, str, float],
    *,
    source: str,
    centre: tuple[float, float],
    ref: int,
    focus: bool = False,
) -> None:
    """Store the motion ``fitted`` (motion, model, fit rms) with its attributes; logged.

    ``focus``: its centroids calibrated with the PRF's focus change.
    """
    motion, model, rms = fitted
    n_stars = h5["centroids"].shape[1] if "centroids" in h5 else 0
    ds = h5["motion"]
    ds[:] = motion
    ds.attrs.update(
        {
            "centre": centre,
            "model": model,
            "source": source,
            "reference_frame": ref,
            "n_stars": n_stars,
            "rms_residual": rms,
        }
    )
    log.info(
        "Jitter from %s (%s model, %d stars, fit rms %.4f px%s); reference frame %d",
        source,
        model,
        n_stars,
        rms,
        ", with the focus change" if focus else "",
        ref,
    )


def _jitter(
    prf: PRFModel | None,
    *,
    centroids: np.ndarray | None,
    wcs_strings: np.ndarray,
    stars: RegionStars,
    frame: tuple,
    mos: MotionSettings,
) -> tuple[np.ndarray, str, float]:
    """Every frame's motion, its model and fit rms.

    From the stars' centroids (calibrated with ``prf``) when given, else from the WCS.
    ``frame``: the reference frame, the motion's centre, the region's shape and origin.
    """
    ref, centre, shape, origin = frame
    if centroids is None:
        return _motion_from_wcs(wcs_strings, ref, shape, origin, centre), "affine", np.nan
    if mos.calibrate_centroids:
        centroids = calibrate_centroids(
            centroids,
            stars.ref_rows,
            stars.ref_cols,
            prf,
            mos.centroid_half,
            flux=stars.ref_flux,
            catalogued=stars.catalogued,
        )
    return _motion_from_stars(centroids, ref, centre, mos)


def _motion_from_stars(
    centroids: np.ndarray, ref: int, centre: tuple[float, float], mos: MotionSettings
) -> tuple[np.ndarray, str, float]:
    """Every frame's motion fitted to the reference stars' centroids: motion, model, rms."""
    n = centroids.shape[0]
    motion = np.full((n, 6), np.nan)
    model = "affine"
    rmss = []
    for k in range(n):
        params, model_k, rms_k, _ = fit_motion(centroids[ref], centroids[k], centre, mos)
        motion[k] = params
        model = model_k
        rmss.append(rms_k)
    return motion, model, float(np.nanmedian(rmss))


def _motion_from_wcs(
    wcs_strings: np.ndarray, ref: int, shape, origin, centre: tuple[float, float]
) -> np.ndarray:
    """Every frame's motion from its WCS relative to the reference frame's."""
    n = wcs_strings.size
    motion = np.full((n, 6), np.nan)
    ref_wcs = wcs_from_string(wcs_strings[ref])
    fitted: dict[str, np.ndarray] = {}  # frames with the same WCS (cutouts)
    for k in range(n):
        if wcs_strings[k] not in fitted:
            frame_wcs = wcs_from_string(wcs_strings[k])
            fitted[wcs_strings[k]] = (
                motion_from_wcs(ref_wcs, frame_wcs, shape, origin, centre)
                if frame_wcs is not None
                else np.full(6, np.nan)
            )
        motion[k] = fitted[wcs_strings[k]]
    return motion
