"""Light-curve diagnostics (§5.8 and §5.17 of the notes) and the expected noise of a star.

All functions are vectorised and NaN-safe: non-finite values are left out, and a statistic
that cannot be computed is NaN (never a warning).

Units: the scatter statistics (``variance``, ``rms_hour``, ``ptp``, ``variability``) are
computed on the *relative* flux ``flux / median - 1`` and are dimensionless, as in the
original's ``diagnostics`` table; :func:`expected_noise` returns ppm, so compare
``rms_hour * 1e6`` with it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from tessphot.constants import TMAG_ZEROPOINT, tmag_to_flux

#: One hour [d].
HOUR = 1.0 / 24.0
#: One hour [s].
HOUR_SECONDS = 3600.0
#: Scale factor from the median absolute deviation to the standard deviation of a Gaussian.
MAD_TO_SIGMA = 1.4826
#: Parts per million.
PPM = 1e6
#: TESS quality flags (SPOC ``QUALITY`` bits) of cadences left out of the diagnostics: attitude
#: tweak (1), safe mode (2), coarse point (4), Earth point (8), momentum dump (32) and manual
#: exclude (128) -- the original's default bitmask.
DEFAULT_QUALITY_BITMASK = 1 | 2 | 4 | 8 | 32 | 128
#: Tolerance of bin edges in :func:`rms_timescale` [fraction of the timescale].
EDGE_TOLERANCE = 1e-9
#: Degree of the polynomial removed from the light curve before measuring ``variability``.
VARIABILITY_POLY_DEGREE = 3
#: Systematic noise floor [ppm sqrt(h)]: 60 ppm on one hour (noise-model.md).
SYSTEMATIC_FLOOR_PPM = 60.0
#: Read noise of the TESS CCDs [e- per pixel per frame] (noise-model.md).
DEFAULT_READ_NOISE = 10.0


def rms_timescale(time, flux, timescale: float = HOUR) -> float:
    """Robust RMS of a light curve binned on a timescale.

    The light curve is binned into consecutive bins of ``timescale`` from its first time
    stamp (the last bin ends at the last time stamp and may be shorter), each bin is averaged,
    and the robust RMS of the bin means is returned: ``1.4826 * median(|m - median(m)|)``.

    Parameters
    ----------
    time : array_like
        Time stamps [d].
    flux : array_like
        Flux, usually relative.
    timescale : float
        Bin width [d]; default one hour.

    Returns
    -------
    float
        NaN if there are no finite points or fewer than two non-empty bins.

    Raises
    ------
    ValueError
        For arrays of different shapes, a non-positive timescale, or finite fluxes without
        any finite time stamp.
    """
    time = np.asarray(time, dtype=float).ravel()
    flux = np.asarray(flux, dtype=float).ravel()
    if time.shape != flux.shape:
        raise ValueError(f"time {time.shape} and flux {flux.shape} differ in shape")
    if not timescale > 0:
        raise ValueError(f"invalid timescale {timescale}: must be > 0")
    finite_flux = np.isfinite(flux)
    if not finite_flux.any():
        return math.nan
    finite_time = np.isfinite(time)
    if not finite_time.any():
        raise ValueError("invalid time vector: no finite time stamps")
    # The bins cover all time stamps, also those of missing fluxes (as the original).
    t0 = time[finite_time].min()
    nbins = max(1, math.ceil((time[finite_time].max() - t0) / timescale))
    good = finite_flux & finite_time
    if not good.any():
        return math.nan
    t = time[good]
    f = flux[good]
    # Time stamps on a bin edge (regular cadences) belong to the later bin, whatever the
    # rounding of the division.
    index = np.minimum(np.floor((t - t0) / timescale + EDGE_TOLERANCE).astype(np.int64), nbins - 1)
    counts = np.bincount(index, minlength=nbins)
    sums = np.bincount(index, weights=f, minlength=nbins)
    means = sums[counts > 0] / counts[counts > 0]
    if means.size < 2:
        return math.nan
    return float(MAD_TO_SIGMA * np.median(np.abs(means - np.median(means))))


def ptp(flux) -> float:
    """Point-to-point scatter: median absolute difference of consecutive finite values.

    Returns NaN for fewer than two finite values.
    """
    flux = np.asarray(flux, dtype=float).ravel()
    flux = flux[np.isfinite(flux)]
    if flux.size < 2:
        return math.nan
    return float(np.median(np.abs(np.diff(flux))))


def variability(time, flux, flux_err=None, degree: int = VARIABILITY_POLY_DEGREE) -> float:
    """Variability: scatter around a smooth trend relative to the typical uncertainty.

    ``std(flux - polynomial) / median(flux_err)``, with a weighted (``1 / flux_err``)
    polynomial of ``degree`` in time removed (a lower degree, down to none, when there are
    too few points).

    Parameters
    ----------
    time, flux : array_like
        Time stamps and (relative) flux.
    flux_err : array_like, optional
        Uncertainties of ``flux``; without them the statistic is NaN.
    degree : int
        Degree of the polynomial.

    Returns
    -------
    float
    """
    time = np.asarray(time, dtype=float).ravel()
    flux = np.asarray(flux, dtype=float).ravel()
    if flux_err is None:
        return math.nan
    err = np.asarray(flux_err, dtype=float).ravel()
    if not time.shape == flux.shape == err.shape:
        raise ValueError("time, flux and flux_err differ in shape")
    good = np.isfinite(time) & np.isfinite(flux)
    if not good.any():
        return math.nan
    t, f, e = time[good], flux[good], err[good]
    finite_err = np.isfinite(e) & (e > 0)
    if not finite_err.any():
        return math.nan
    degree = min(degree, np.unique(t).size - 1)
    if degree >= 0:
        weights = np.where(finite_err, 1.0 / np.where(finite_err, e, 1.0), 0.0)
        if np.count_nonzero(weights) <= degree:
            weights = np.ones_like(f)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", np.exceptions.RankWarning)
            trend = np.polynomial.Polynomial.fit(t, f, degree, w=weights)(t)
        f = f - trend
    return float(np.std(f) / np.median(e[finite_err]))


def _median(values) -> float:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else math.nan


def lightcurve_diagnostics(
    time,
    flux,
    flux_err,
    quality=None,
    centroid_row=None,
    centroid_column=None,
    *,
    quality_bitmask: int = DEFAULT_QUALITY_BITMASK,
    timescale: float = HOUR,
) -> dict[str, float]:
    """The light-curve diagnostics stored for every target (§5.8 of the notes).

    Computed on the cadences with a finite time and none of the ``quality_bitmask`` flags.

    Parameters
    ----------
    time, flux, flux_err : array_like, shape (n,)
        Time [d], flux and its uncertainty [e-/s].
    quality : array_like of int, shape (n,), optional
        TESS quality flags.
    centroid_row, centroid_column : array_like, shape (n,), optional
        Centroid per cadence [pixels].
    quality_bitmask : int
        Flags that exclude a cadence.
    timescale : float
        Timescale of ``rms_hour`` [d].

    Returns
    -------
    dict
        ``mean_flux`` (median flux [e-/s]); on the relative flux ``flux / mean_flux - 1``:
        ``variance`` (ddof 1), ``rms_hour`` (:func:`rms_timescale`), ``ptp``
        (:func:`ptp`), ``variability`` (:func:`variability`); ``pos_row`` and
        ``pos_column`` (median centroid). NaN where undefined.
    """
    time = np.asarray(time, dtype=float).ravel()
    flux = np.asarray(flux, dtype=float).ravel()
    flux_err = np.asarray(flux_err, dtype=float).ravel()
    n = time.size
    if flux.shape != (n,) or flux_err.shape != (n,):
        raise ValueError("time, flux and flux_err differ in shape")
    good = np.isfinite(time)
    if quality is not None:
        quality = np.asarray(quality).ravel()
        if quality.shape != (n,):
            raise ValueError("quality and time differ in shape")
        good &= (quality.astype(np.int64) & int(quality_bitmask)) == 0
    t, f, e = time[good], flux[good], flux_err[good]
    mean_flux = _median(f)
    result = {
        "mean_flux": mean_flux,
        "variance": math.nan,
        "rms_hour": math.nan,
        "ptp": math.nan,
        "variability": math.nan,
        "pos_row": math.nan if centroid_row is None else _median(np.asarray(centroid_row)[good]),
        "pos_column": (
            math.nan if centroid_column is None else _median(np.asarray(centroid_column)[good])
        ),
    }
    if not math.isfinite(mean_flux) or mean_flux == 0:
        return result
    relative = f / mean_flux - 1.0
    relative_err = e / abs(mean_flux)
    finite = relative[np.isfinite(relative)]
    if finite.size >= 2:
        result["variance"] = float(np.var(finite, ddof=1))
    result["rms_hour"] = rms_timescale(t, relative, timescale)
    result["ptp"] = ptp(relative)
    result["variability"] = variability(t, relative, relative_err)
    return result


def mask_diagnostics(mask, sumimage) -> dict[str, float]:
    """Diagnostics of the photometric mask.

    Parameters
    ----------
    mask : array_like of bool, shape (rows, columns)
    sumimage : array_like, shape (rows, columns)

    Returns
    -------
    dict
        ``mask_size``: number of pixels in the mask; ``edge_flux``: summed ``sumimage`` of the
        mask pixels on the edge of the stamp (a sign that the stamp is too small), 0 when the
        mask does not touch the edge.
    """
    mask = np.asarray(mask, dtype=bool)
    sumimage = np.asarray(sumimage, dtype=float)
    if mask.shape != sumimage.shape or mask.ndim != 2:
        raise ValueError(f"mask {mask.shape} and sumimage {sumimage.shape} must be 2-D alike")
    edge = np.zeros_like(mask)
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    on_edge = mask & edge & np.isfinite(sumimage)
    return {"mask_size": int(mask.sum()), "edge_flux": float(sumimage[on_edge].sum())}


def expected_noise(
    tmag=None,
    *,
    flux=None,
    n_pix,
    background,
    exposure_time: float,
    n_frames: float,
    cadence: float,
    read_noise: float = DEFAULT_READ_NOISE,
    timescale: float = HOUR_SECONDS,
    zeropoint: float = TMAG_ZEROPOINT,
    components: bool = False,
):
    """Expected noise of a star on a timescale (noise-model.md), in ppm.

    The sum in quadrature of shot noise, sky noise, read noise and a systematic floor of
    60 ppm per sqrt(hour). Over ``timescale`` the star collects photons for
    ``t = timescale * exposure_time / cadence`` and ``timescale * n_frames / cadence`` frames
    are co-added.

    Parameters
    ----------
    tmag : float or array_like, optional
        TESS magnitude (converted with ``zeropoint``); give it or ``flux``.
    flux : float or array_like, optional
        Stellar flux [e-/s].
    n_pix : float or array_like
        Pixels in the aperture.
    background : float or array_like
        Sky background [e-/s per pixel].
    exposure_time : float
        Photon-collecting time per cadence [s], e.g. 1425.6 s for 1800-s FFIs (1.98 s of
        every 2-s frame, 80 % of the frames kept by the cosmic-ray mitigation).
    n_frames : float
        2-s frames co-added per cadence (``NREADOUT``), e.g. 720 for 1800-s FFIs.
    cadence : float
        Time between cadences [s].
    read_noise : float
        Read noise [e- per pixel per frame].
    timescale : float
        Timescale of the noise [s]; default one hour.
    zeropoint : float
        Magnitude of a star giving 1 e-/s.
    components : bool
        Return the components too.

    Returns
    -------
    float or numpy.ndarray
        Total noise [ppm]; NaN for a non-positive flux. With ``components``, a dict of
        ``shot``, ``sky``, ``read``, ``systematic`` and ``total`` [ppm].
    """
    if (tmag is None) == (flux is None):
        raise ValueError("give either tmag or flux")
    for name, value in (
        ("exposure_time", exposure_time),
        ("n_frames", n_frames),
        ("cadence", cadence),
        ("timescale", timescale),
    ):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, not {value}")
    star = tmag_to_flux(np.asarray(tmag, dtype=float), zeropoint) if flux is None else flux
    star = np.asarray(star, dtype=float)
    star = np.where(star > 0, star, np.nan)
    n_pix = np.asarray(n_pix, dtype=float)
    background = np.asarray(background, dtype=float)
    cadences = timescale / cadence
    t = cadences * exposure_time
    frames = cadences * n_frames
    signal = star * t
    shot = PPM / np.sqrt(signal)
    sky = PPM * np.sqrt(n_pix * background * t) / signal
    read = PPM * read_noise * np.sqrt(n_pix * frames) / signal
    systematic = np.broadcast_to(
        SYSTEMATIC_FLOOR_PPM / math.sqrt(timescale / HOUR_SECONDS), np.shape(shot)
    )
    total = np.sqrt(shot**2 + sky**2 + read**2 + systematic**2)

    def out(value):
        return float(value) if np.ndim(value) == 0 else np.asarray(value)

    if components:
        return {
            "shot": out(shot),
            "sky": out(sky),
            "read": out(read),
            "systematic": out(systematic),
            "total": out(total),
        }
    return out(total)
