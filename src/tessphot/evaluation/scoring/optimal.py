"""The noise limit of a star: photon, sky and read noise of its S/N-optimal aperture.

The yardstick of issue 14 (``../shared/docs/noise-model.md``, "On simulated data"): a light
curve is judged against the best any aperture could do for the star alone, not against the
noise of the aperture the pipeline happened to choose, among the pixels the data have (a star
at the edge of the data keeps only the part of its light on them, :func:`on_region`). For every
pixel ``i`` of a stamp the star puts ``s_i`` e-/s (its PRF times its flux) on a sky of ``B_i``
e-/s; over one cadence of exposure ``T`` with ``n`` co-added frames of read noise ``r_i`` e-
the pixel's variance is ``(s_i + B_i) T + n r_i^2`` [e-^2]. The aperture with the largest ``sum
s / sqrt(sum var)`` is found exactly among the sets ``{i : s_i / var_i >= threshold}`` (adding
a pixel helps precisely when its ``s_i / var_i`` exceeds ``S / (2 V)`` of the current set), so
the pixels are ranked by ``s_i / var_i`` and every prefix is tried.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tessphot.lightcurve.diagnostics import EDGE_TOLERANCE, MAD_TO_SIGMA


@dataclass(frozen=True)
class OptimalAperture:
    """The S/N-optimal aperture of one star (:func:`optimal_aperture`)."""

    #: Pixels in the aperture.
    npix: int
    #: Fraction of the star's flux inside it.
    enclosed: float
    #: The star's light inside it [e-/s].
    light: float
    #: Relative noise of the star's flux per cadence (photon + sky + read).
    noise_cadence: float
    #: Its components per cadence (relative): the star's photons, the sky, the read noise.
    shot: float
    sky: float
    read: float
    #: The aperture on the stamp (boolean image).
    mask: np.ndarray

    def noise(self, timescale: float, cadence: float) -> float:
        """Relative noise of the mean over ``timescale`` [s] of cadences ``cadence`` [s] apart.

        Parameters
        ----------
        timescale, cadence : float
            The averaging time and the time between cadences [s].

        Returns
        -------
        float
            ``noise_cadence / sqrt(cadences per timescale)`` (at least one cadence).
        """
        per_bin = max(timescale / cadence, 1.0)
        return self.noise_cadence / math.sqrt(per_bin)


def optimal_aperture(
    star: np.ndarray,
    sky: np.ndarray,
    read_noise: np.ndarray | float,
    *,
    exposure_time: float,
    n_frames: float,
) -> OptimalAperture:
    """The aperture of best signal-to-noise of one star on a stamp.

    Parameters
    ----------
    star : numpy.ndarray
        The star's flux in every pixel of the stamp [e-/s] (its PRF times its flux; the
        stamp should hold the whole PRF).
    sky : numpy.ndarray
        The sky background of every pixel [e-/s], same shape.
    read_noise : numpy.ndarray or float
        Read noise of every pixel (or of all) [e- per frame].
    exposure_time : float
        Photon-collecting time per cadence [s].
    n_frames : float
        Frames co-added per cadence.

    Returns
    -------
    OptimalAperture

    Raises
    ------
    ValueError
        When the shapes differ or the star puts no light on the stamp.
    """
    star = np.asarray(star, dtype=float)
    sky = np.asarray(sky, dtype=float)
    if star.shape != sky.shape:
        raise ValueError(f"star {star.shape} and sky {sky.shape} stamps differ in shape")
    total = float(star.sum())
    if not total > 0:
        raise ValueError("the star puts no light on the stamp")
    read2 = np.broadcast_to(np.asarray(read_noise, dtype=float) ** 2, star.shape)
    shot = np.clip(star, 0.0, None).ravel() * exposure_time
    sky_var = np.clip(sky, 0.0, None).ravel() * exposure_time
    read_var = (n_frames * read2).ravel()
    variance = shot + sky_var + read_var
    signal = star.ravel() * exposure_time
    order = np.argsort(-(signal / np.maximum(variance, np.finfo(float).tiny)), kind="stable")
    snr = np.cumsum(signal[order]) / np.sqrt(np.cumsum(variance[order]))
    best = int(np.argmax(snr)) + 1
    chosen = order[:best]
    s = float(signal[chosen].sum())
    mask = np.zeros(star.size, dtype=bool)
    mask[chosen] = True
    return OptimalAperture(
        npix=best,
        enclosed=s / (total * exposure_time),
        light=s / exposure_time,
        noise_cadence=float(np.sqrt(variance[chosen].sum())) / s,
        shot=float(np.sqrt(shot[chosen].sum())) / s,
        sky=float(np.sqrt(sky_var[chosen].sum())) / s,
        read=float(np.sqrt(read_var[chosen].sum())) / s,
        mask=mask.reshape(star.shape),
    )


def star_stamp(prf, row: float, col: float, flux: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The image of one star alone on the PRF's stamp around it.

    Parameters
    ----------
    prf : tessphot.prf.models.PRFModel
        The PRF model (``stamps``).
    row, col : float
        The star's science-area position [px].
    flux : float
        Its flux [e-/s].

    Returns
    -------
    image : numpy.ndarray
        The star's flux per pixel [e-/s] (the PRF's footprint, 13 x 13 px for SPOC).
    origin : tuple of int
        Science-area (row, column) of the stamp's first pixel.
    """
    stamps, row0, col0 = prf.stamps([row], [col])
    return stamps[0] * flux, (int(row0[0]), int(col0[0]))


def on_region(
    image: np.ndarray, origin: tuple[int, int], region: tuple[int, int, int, int] | None
) -> tuple[np.ndarray, tuple[int, int]]:
    """The part of a stamp on the data: pixels off it can be in no aperture.

    Parameters
    ----------
    image : numpy.ndarray
        A stamp (:func:`star_stamp`).
    origin : tuple of int
        Science-area (row, column) of its first pixel.
    region : tuple of int or None
        The data's science-area rows ``r0:r1`` and columns ``c0:c1``, as
        ``(r0, r1, c0, c1)``; None: the whole stamp.

    Returns
    -------
    image : numpy.ndarray
        The stamp's pixels on the data (empty when none is).
    origin : tuple of int
        Science-area (row, column) of its first pixel.
    """
    if region is None:
        return image, origin
    r0, r1, c0, c1 = (int(v) for v in region)
    top, left = max(r0 - origin[0], 0), max(c0 - origin[1], 0)
    bottom = max(min(r1 - origin[0], image.shape[0]), top)
    right = max(min(c1 - origin[1], image.shape[1]), left)
    return image[top:bottom, left:right], (origin[0] + top, origin[1] + left)


def full_bin_rms(t: np.ndarray, y: np.ndarray, timescale: float, cadence: float) -> float:
    """Robust rms of a light curve binned on a timescale, every bin scaled to a full one.

    As :func:`tessphot.lightcurve.diagnostics.rms_timescale` (consecutive bins of
    ``timescale`` from the first time stamp, the robust rms of the bin means), but each
    bin's mean of ``n`` cadences is multiplied by ``sqrt(n / N)``, ``N`` the cadences of a
    full bin: white noise then gives ``sigma / sqrt(N)`` whatever cadences are missing.
    Plain bin means of partly filled bins (flagged cadences, sequence edges) are noisier:
    white noise on the good cadences of real sector 1 reads 5-7 % above
    ``sigma / sqrt(2)`` on one hour, which is not a slow term.

    Parameters
    ----------
    t : numpy.ndarray
        Times [d].
    y : numpy.ndarray
        Values (NaN are left out).
    timescale, cadence : float
        Bin width and time between cadences [d].

    Returns
    -------
    float
        NaN with fewer than two non-empty bins.
    """
    means = _full_bin_means(t, y, timescale, cadence)
    if means.size < 2:
        return math.nan
    return float(MAD_TO_SIGMA * np.median(np.abs(means - np.median(means))))


def full_bin_std(t: np.ndarray, y: np.ndarray, timescale: float, cadence: float) -> float:
    """The standard deviation of :func:`full_bin_rms`'s scaled bin means (not robust).

    For comparing two light curves of one star that differ a little (e.g. two storages of
    the same data): a median absolute deviation is one order statistic, which moves by
    about 1 % when every one of ~600 values moves by 3 % of the noise, while the standard
    deviation moves by about 0.1 %.

    Parameters and returns as :func:`full_bin_rms`.
    """
    means = _full_bin_means(t, y, timescale, cadence)
    return float(np.std(means)) if means.size >= 2 else math.nan


def paired_excess(
    t: np.ndarray, y: np.ndarray, reference: np.ndarray, timescale: float, cadence: float
) -> float:
    """How many standard errors the variance of ``y``'s bin means exceeds ``reference``'s.

    Two light curves of one star on the same cadences (finite in both), binned as
    :func:`full_bin_std` does; bin by bin, ``d = (a - mean(a))^2 - (b - mean(b))^2`` of their
    bin means ``a`` and ``b``, and the result is ``mean(d)`` over its standard error.
    Negative when ``y`` is the quieter one. Paired, the noise both share (the star's own
    photon noise, a background error common to both apertures) cancels, and a rare large
    excursion in one of them (a neighbour's eclipse) counts with its full weight but also
    widens the error: events filling ``n`` bins in all reach at most about ``sqrt(n)``
    standard errors. Bins are taken as independent: red noise makes the error too small,
    so the comparison is, if anything, too ready to call a difference.

    Returns
    -------
    float
        NaN with fewer than three common bins or no spread in ``d``.
    """
    t, y, reference = (np.asarray(v, dtype=float) for v in (t, y, reference))
    common = np.isfinite(t) & np.isfinite(y) & np.isfinite(reference)
    a = _full_bin_means(t[common], y[common], timescale, cadence)
    b = _full_bin_means(t[common], reference[common], timescale, cadence)
    if a.size < 3:
        return math.nan
    d = (a - a.mean()) ** 2 - (b - b.mean()) ** 2
    spread = float(np.std(d, ddof=1))
    return float(d.mean() / (spread / math.sqrt(d.size))) if spread > 0 else math.nan


def _full_bin_means(t: np.ndarray, y: np.ndarray, timescale: float, cadence: float) -> np.ndarray:
    """The means of the consecutive bins of ``timescale``, scaled to full bins (finite)."""
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    use = np.isfinite(t) & np.isfinite(y)
    t, y = t[use], y[use]
    if t.size < 2:
        return np.zeros(0)
    index = np.floor((t - t.min()) / timescale + EDGE_TOLERANCE).astype(np.int64)
    counts = np.bincount(index)
    sums = np.bincount(index, weights=y)
    full = max(round(timescale / cadence), 1)
    filled = counts > 0
    return sums[filled] / counts[filled] * np.sqrt(counts[filled] / full)
