"""The background and uncertainties of a target pixel file: SPOC's, or our own.

SPOC's ``FLUX`` is background-subtracted with ``FLUX_BKG``; for bright stars that
background is known to be biased (the star's wings leak into SPOC's background pixels),
and for the brightest stars SPOC leaves ``FLUX_BKG`` and ``FLUX_ERR`` NaN. With
``[photometry] tpf_background = "fit"``, or whenever SPOC's values are NaN, the
background comes from the same estimator as for small cutouts
(:func:`tessphot.prepare.background_small.fit_background`: a constant sky fitted per
cadence with the PRFs of the catalogued stars and a common jitter shift, on SPOC's
``FLUX + FLUX_BKG``), smoothed in time like the prepare stage's mesh. Where ``FLUX_ERR`` is
NaN, the uncertainties come from the data: Poisson noise of flux plus background (``FLUX``
is in electrons per second: the gain is already applied) over the cadence's exposure, plus
the read noise of every co-added frame (``READNOI*`` of the pixel's CCD output, in
electrons, or :data:`DEFAULT_READ_NOISE` when the header has none).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from tessphot.config.prepare import BackgroundSettings
from tessphot.constants import INTEGRATION_TIME, tmag_to_flux
from tessphot.io.tpf import TargetPixelFile
from tessphot.prepare import background_small as small
from tessphot.prepare.smoothing import smooth_in_time
from tessphot.prf import load_prf
from tessphot.sources.errors import SourceError
from tessphot.sources.stars import StarTable

logger = logging.getLogger(__name__)

#: Read noise used when the TPF's header has none [e- per pixel per frame].
DEFAULT_READ_NOISE = 10.0
#: SPOC aperture bits of the CCD outputs A-D.
OUTPUT_BITS = (32, 64, 128, 256)
#: Catalogued stars brighter than this are modelled in the fit [Tmag].
FIT_TMAG_LIMIT = 19.0
#: The background methods of a TPF.
SPOC, FIT = "spoc", "fit"


@dataclass(frozen=True)
class TPFBackground:
    """How the background of target pixel files is taken.

    Attributes
    ----------
    method : str
        ``"spoc"`` (SPOC's ``FLUX_BKG``; ours only where it is NaN) or ``"fit"`` (ours).
    prf_dir : str or None
        The PRF of the fit: a folder of SPOC models, ``"archive"``, or None (analytic).
    prf_cache, prf_url : str or None
        The download cache and URL for ``"archive"``.
    settings : BackgroundSettings
        The estimator's settings (``[prepare.background]``).
    """

    method: str = SPOC
    prf_dir: str | None = None
    prf_cache: str | None = None
    prf_url: str | None = None
    settings: BackgroundSettings = field(default_factory=BackgroundSettings)


@dataclass
class PixelCubes:
    """A TPF's pixels after the background choice.

    Attributes
    ----------
    images, errors, backgrounds : numpy.ndarray, shape (N, rows, cols)
        Background-subtracted flux, its uncertainty and the background [e-/s].
    not_used : numpy.ndarray of bool or None
        Pixels our background left out (None: SPOC's background pixels apply).
    record : dict
        What was done, for the light curves' headers (``method``, ``reason``,
        ``uncertainties``).
    """

    images: np.ndarray
    errors: np.ndarray
    backgrounds: np.ndarray
    not_used: np.ndarray | None
    record: dict


def read_noise_image(tpf: TargetPixelFile) -> tuple[np.ndarray, str]:
    """Read noise of every pixel [e-] from its CCD output, and where it came from."""
    values = [tpf.header.get(f"READNOI{o}") for o in "ABCD"]
    known = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not known:
        return np.full(tpf.shape, DEFAULT_READ_NOISE), f"default {DEFAULT_READ_NOISE:g} e-"
    fallback = float(np.median(known))
    noise = np.full(tpf.shape, fallback)
    for bit, value in zip(OUTPUT_BITS, values, strict=True):
        if isinstance(value, int | float) and math.isfinite(value):
            noise[(tpf.aperture & bit) > 0] = float(value)
    return noise, "READNOI* header"


def data_uncertainties(tpf: TargetPixelFile, raw: np.ndarray) -> tuple[np.ndarray, str]:
    """Uncertainties of calibrated pixels [e-/s] from the data: Poisson plus read noise.

    ``raw`` is flux plus background [e-/s]; the cadence's exposure is the co-added frames
    (``NREADOUT``, else ``NUM_FRM``) times their integration time (``INT_TIME``).
    """
    header = tpf.header
    reads = header.get("NREADOUT", header.get("NUM_FRM"))
    if not isinstance(reads, int | float) or reads <= 0:
        reads = tpf.cadence / float(header.get("FRAMETIM", 2.0))
    exposure = float(reads) * float(header.get("INT_TIME", INTEGRATION_TIME))
    noise, source = read_noise_image(tpf)
    electrons = np.clip(raw, 0.0, None) * exposure
    errors = np.sqrt(electrons + float(reads) * noise**2) / exposure
    return errors.astype(np.float32), f"Poisson + read noise ({source}, {reads:g} reads)"


def _spoc_missing(tpf: TargetPixelFile, cube: np.ndarray) -> bool:
    """Whether SPOC left a cube NaN on collected pixels where it has flux."""
    has_flux = np.isfinite(tpf.flux) & tpf.collected[None]
    return bool(np.any(has_flux & ~np.isfinite(cube)))


def choose_cubes(
    tpf: TargetPixelFile,
    keep: np.ndarray,
    times: np.ndarray,
    stars: StarTable,
    choice: TPFBackground,
) -> PixelCubes:
    """The TPF's images, uncertainties and background after the background choice.

    Parameters
    ----------
    tpf : TargetPixelFile
        The file.
    keep : numpy.ndarray of bool
        Cadences used (those with a time).
    times : numpy.ndarray
        Their times [d] (for the time smoothing).
    stars : StarTable
        The catalogued stars projected onto the TPF (science coordinates).
    choice : TPFBackground
        The choice.

    Raises
    ------
    SourceError
        When the TPF has no flux at all, or our background is needed but cannot be
        estimated.
    """
    collected = tpf.collected
    if not np.isfinite(tpf.flux[keep][:, collected]).any():
        raise SourceError(f"{tpf.path}: FLUX is NaN on every collected pixel: no data to measure")
    flux, err, bkg = (np.where(collected, c[keep], np.float32(np.nan)) for c in (
        tpf.flux, tpf.flux_err, tpf.flux_bkg))  # fmt: skip
    missing_bkg = _spoc_missing(tpf, tpf.flux_bkg)
    missing_err = _spoc_missing(tpf, tpf.flux_err)
    record = {"method": SPOC, "uncertainties": "spoc"}
    raw = flux + np.nan_to_num(bkg)
    if missing_err:
        err, record["uncertainties"] = data_uncertainties(tpf, raw)
        err = np.where(collected, err, np.float32(np.nan))
    if choice.method == SPOC and not missing_bkg:
        if missing_err:
            _warn(tpf, f"SPOC's FLUX_ERR is NaN: uncertainties from {record['uncertainties']}")
        return PixelCubes(flux, err, bkg, None, record)
    reason = "chosen" if choice.method == FIT else "SPOC's FLUX_BKG is NaN"
    sky, sky_err, not_used = own_background(tpf, raw, err, times, stars, choice)
    record.update(method=FIT, reason=reason)
    message = (
        f"background fitted with the catalogued stars' PRFs ({reason}); uncertainties from "
        f"{record['uncertainties']}"
    )
    if choice.method == FIT and not missing_err:
        logger.info("%s: %s", tpf.path.name, message)
    else:
        _warn(tpf, message)
    images = raw - sky[:, None, None]
    errors = np.sqrt(err.astype(np.float64) ** 2 + sky_err[:, None, None] ** 2)
    backgrounds = np.where(collected, sky[:, None, None], np.nan)
    return PixelCubes(
        images.astype(np.float32),
        errors.astype(np.float32),
        backgrounds.astype(np.float32),
        not_used,
        record,
    )


def _warn(tpf: TargetPixelFile, message: str) -> None:
    logger.warning("%s: %s", tpf.path.name, message)


def own_background(
    tpf: TargetPixelFile,
    raw: np.ndarray,
    errors: np.ndarray,
    times: np.ndarray,
    stars: StarTable,
    choice: TPFBackground,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Our sky of every cadence [e-/s], its uncertainty, and the pixels left out.

    Raises
    ------
    SourceError
        When no cadence gives an estimate.
    """
    settings = choice.settings
    prf = load_prf(
        choice.prf_dir, tpf.sector, tpf.camera, tpf.ccd, cache_dir=choice.prf_cache,
        url=choice.prf_url,
    )  # fmt: skip
    bright = stars.tmag < FIT_TMAG_LIMIT
    model = small.star_model(
        prf,
        stars.row[bright],
        stars.col[bright],
        tmag_to_flux(stars.tmag[bright]),
        tpf.shape,
        tpf.origin,
        settings.fit_max_stars,
    )
    n = raw.shape[0]
    sky, sky_err = np.full((n, 1, 1), np.nan), np.full((n, 1, 1), np.nan)
    not_used = np.ones(tpf.shape, dtype=bool)
    excluded = ~tpf.collected
    for k in range(n):
        est = small.fit_background(raw[k], errors[k], model, settings, exclude=excluded)
        sky[k], sky_err[k] = est.mesh[0, 0], est.mesh_err[0, 0]
        not_used &= est.not_used
    valid = np.isfinite(sky[:, 0, 0]) & np.isfinite(sky_err[:, 0, 0])
    if not valid.any():
        raise SourceError(
            f"{tpf.path}: no background can be estimated: SPOC's FLUX_BKG is not used and "
            f"too few usable pixels in every cadence ({int(tpf.collected.sum())} collected)"
        )
    half = settings.smoothing_window(float(tpf.cadence)) // 2
    smoothed = [
        smooth_in_time(sky, sky_err, times, valid, k, half, settings.curvature_sigma)
        for k in range(n)
    ]
    return (
        np.array([s[0][0, 0] for s in smoothed]),
        np.array([s[1][0, 0] for s in smoothed]),
        not_used,
    )
