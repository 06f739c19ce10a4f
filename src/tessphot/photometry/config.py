"""Settings of the photometry stage (a light module: no heavy imports).

Every field is a tunable written into the light-curve headers (``HISTORY`` cards, read back
with :func:`tessphot.lightcurve.settings_from_header`). A settings file overrides them in the
table ``[photometry]``; ``[photometry.k2p2]`` overrides fields of
:class:`tessphot.photometry.k2p2.K2P2Settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class PhotometrySettings:
    """Tunables of the photometry methods (aperture, linear PSF, PSF, halo).

    Attributes
    ----------
    stamp_min_size : int
        Smallest stamp side [px] (the original's 15).
    stamp_grow : int
        Pixels added on each side of the stamp where the aperture touches it [px].
    max_attempts : int
        Mask searches (initial one plus resizes) before giving up ...
    max_attempts_bright : int
        ... and for targets brighter than ``bright_tmag``.
    bright_tmag : float
        Targets brighter than this get ``max_attempts_bright`` [Tmag].
    optimise_aperture : bool
        Shrink the K2P2 mask to the pixels that minimise the expected noise of the flux
        (tessphot's addition); False keeps the K2P2 mask as the original did.
    contaminant_tmag_max : float
        Catalog stars fainter than this are ignored on the stamp (markers, contamination,
        skip list) [Tmag].
    background_used_fraction : float
        A pixel is marked as used for the background (APERTURE bit 4) when it was used in at
        least this fraction of the frames.
    motion_correction : bool
        Correct the aperture flux for the pointing motion (tessphot's addition): the
        target's light scaled to its mean fraction in the aperture and the neighbours' light
        that moves in and out removed, cadence by cadence, from the PRF and the jitter model
        (:mod:`tessphot.photometry.scene`); False gives the plain sum of the aperture.
    motion_correction_saturated : bool
        ... also for saturated targets. A bleed column keeps the charge of its column, so
        while the aperture holds the whole bleed, the light it collects of each column is
        what the PRF puts into the aperture's pixels of that column, and the correction
        holds.
    motion_positions_saturated : bool
        The saturated target's positions in the motion correction come from a linear PSF
        fit of its wings with fitted shifts instead of the jitter model (whose ~0.002-px
        errors move a large aperture's light by 1e-5-1e-4).
    trim_spilling_columns : bool
        A saturated target's aperture whose bleed columns run off the data leaves those
        columns (and one on either side) out instead of switching to ``spill_method``: the
        others keep their charge, and the motion correction holds for them. Measured on
        simulated stars bleeding off the data: 2-3 times less noise than the fit of the
        wings, but the few % of the light left are diluted by the prepared background's
        response to the star (signals 2-7 % too shallow), hence off by default.
    saturation_fraction : float
        A pixel whose brightest good cadence (or mean, for the aperture's edge) reaches this
        fraction of a full pixel's flux (the full well in every 2-s frame) is saturated:
        linear and PSF photometry leave it out of their fits (the PRF does not describe it),
        and an aperture with such a pixel on the edge of the data has its bleed column
        running off the data.
    prf_dir : str
        Folder of SPOC PRF models for the motion correction and the contamination; empty:
        the PRF the prepare stage used (recorded in the HDF5 file), ``"analytic"``: the
        analytic PRF, ``"archive"``: the SPOC models in the download cache ``prf_cache``,
        downloaded from ``prf_url`` first when missing (:mod:`tessphot.prf_download`).
    prf_cache : str
        Download cache of the SPOC PRF models (also for ``tessphot prepare --prf-dir
        archive`` and ``tessphot prf-download``); empty: ``$TESSPHOT_PRF_CACHE``, else
        ``~/.cache/tessphot/prf``.
    prf_url : str
        The archive's folder of SPOC PRF models (a mirror); empty: ``$TESSPHOT_PRF_URL``,
        else MAST's (:data:`tessphot.prf_download.PRF_URL`).
    gzip_level : int
        Compression level of the ``.fits.gz`` light curves (1 fastest, 9 smallest; noisy
        floating-point columns compress about as well at 1 as at 9, 3 % larger files).
    linpsf_fit_radius : float
        Linear PSF photometry fits the pixels within this distance of the target [px].
    linpsf_fit_light : float
        Neighbours putting at least this fraction of the target's catalogue flux on the fit
        region are fitted; fainter ones are subtracted at their catalogue flux.
    linpsf_max_stars : int
        Most stars fitted (the target included; the brightest on the region).
    linpsf_max_inflation : float
        A neighbour is fitted only if fitting it raises the variance of the target's flux
        by at most this factor (at the mean positions and typical pixel variances);
        otherwise it is too blended to separate and is subtracted at its catalogue flux.
    linpsf_min_separation : float
        Neighbours left out of the fit as too blended and closer than this to the target
        are listed as skipped targets (their light curve would be the target's) [px].
    linpsf_background : bool
        Fit a constant local background on every cadence (on top of the prepared
        background).
    linpsf_smooth_hours : float
        The neighbours' fluxes and the background offset of the first pass are smoothed
        over this window before the target's flux is fitted alone (variability of the
        neighbours faster than this leaks into the target); 0: every parameter free on every
        cadence [h].
    linpsf_smooth_sigma : float
        ... except on cadences where a straight line over that window does not describe
        them (residual chi-square this many standard deviations above its degrees of
        freedom): there every parameter stays free.
    linpsf_bleed_margin : int
        ... widened by this many pixels along their column (the partly filled tips of the
        bleed columns) and by one across [px].
    linpsf_saturated_tmag : float
        Targets at least this bright are fitted over the PRF's whole footprint (6.5 px)
        instead of ``linpsf_fit_radius``: with their saturated core left out, the fit rests
        on the wings [Tmag].
    linpsf_fit_shifts : bool
        For a target whose saturated pixels are left out, fit its position shifts on every
        cadence too (linearised): its wings' light depends steeply on the position, and the
        jitter model's 0.001-px errors would move its flux by 0.1 %.
    psf_positions : str
        What PSF photometry (method ``psf``, which shares the fit region and the choice of
        stars of the ``linpsf_*`` settings) fits of the positions: ``"sector"``, an offset
        from the catalogue position per star over the whole data (plus a drift with
        ``psf_drift``), the jitter model on top; ``"cadence"``, in addition the target's own
        offset on every cadence (for stars that move in ways the jitter model does not
        describe; noisier for faint stars).
    psf_drift : bool
        The offsets of ``psf_positions`` drift linearly in time (an unknown or wrong proper
        motion); False: constant offsets.
    psf_offset_light : float
        Fitted neighbours putting at least this fraction of the target's light on the fit
        region get fitted offsets too; the others stay at their catalogue positions (plus
        the jitter model).
    psf_offset_coverage : float
        ... and at least this fraction of their own light (their position is constrained:
        not a star on the edge of the region).
    psf_max_offset_stars : int
        Most stars with fitted offsets (the target included; the brightest on the region).
    psf_max_offset : float
        Largest offset of a star from its catalogue position (plus jitter) at any time of
        the data. A neighbour running into it stays at its catalogue position; when the
        target does (or the fit does not converge), the catalogue positions are used and a
        warning is given [px].
    psf_max_iterations : int
        Most Levenberg-Marquardt steps tried by a position fit (each a pass over its
        cadences).
    psf_tolerance : float
        A position fit has converged when its next step would move no star by more than
        this [px].
    psf_fit_cadences : int
        The offsets over the whole data are fitted on at most this many good cadences,
        evenly spread (the fluxes are then fitted on every cadence).
    halo_radius : float
        Halo photometry uses the pixels within this distance of the target (its stamp is
        the square around them) [px].
    halo_saturation_fraction : float
        A pixel whose brightest good cadence reaches this fraction of the brightest pixel
        near the target counts as saturated (left out of the halo).
    halo_bleed_margin : int
        Saturated pixels are widened by this many pixels along their column (the partly
        filled tips of the bleed columns), and by one across [px].
    halo_min_snr : float
        Pixels whose mean is below this many times their typical per-cadence uncertainty
        are left out of the halo.
    halo_max_neighbour_light : float
        Pixels where the catalogued neighbours put more than this fraction of the pixel's
        mean are left out of the halo.
    halo_split_gap : float
        The light curve is split at gaps longer than this; each part gets its own weights
        [d].
    halo_tv_epsilon : float
        Smoothing of the total variation, ``|x| -> sqrt(x^2 + eps^2)`` [relative flux].
    halo_max_iterations : int
        Most iterations of the weights' optimiser (L-BFGS-B) per part.
    halo_auto_tmag : float
        The automatic choice switches from aperture photometry (to ``spill_method``) only
        for targets at least this bright whose aperture spills off the stamp or the data
        [Tmag].
    halo_edge_flux : float
        ... and only when a saturated pixel of the aperture lies on the edge of the data
        (its bleed column runs off), the light of the aperture's pixels on that edge
        exceeds this fraction of the catalogue flux (the original's edge-flux criterion), or
        the stamp needed too many resizes.
    spill_method : str
        The method the automatic choice switches to when a bright target's light spills off
        the data: ``"linpsf"`` (the PRF fitted to its unsaturated wings, shifts fitted:
        unbiased, with the noise of the wings' light; halo photometry instead where the
        PRF is not trusted with the wings: the analytic PRF on real data) or ``"halo"``.
    """

    stamp_min_size: int = 15
    stamp_grow: int = 10
    max_attempts: int = 5
    max_attempts_bright: int = 10
    bright_tmag: float = 6.0
    optimise_aperture: bool = True
    contaminant_tmag_max: float = 19.0
    background_used_fraction: float = 0.5
    motion_correction: bool = True
    motion_correction_saturated: bool = True
    motion_positions_saturated: bool = True
    saturation_fraction: float = 0.8
    trim_spilling_columns: bool = False
    prf_dir: str = ""
    prf_cache: str = ""
    prf_url: str = ""
    gzip_level: int = 1
    linpsf_fit_radius: float = 4.0
    linpsf_fit_light: float = 0.01
    linpsf_max_stars: int = 12
    linpsf_max_inflation: float = 1.05
    linpsf_min_separation: float = 1.0
    linpsf_background: bool = True
    linpsf_smooth_hours: float = 6.0
    linpsf_smooth_sigma: float = 4.0
    linpsf_bleed_margin: int = 2
    linpsf_saturated_tmag: float = 7.5
    linpsf_fit_shifts: bool = True
    psf_positions: str = "sector"
    psf_drift: bool = True
    psf_offset_light: float = 0.2
    psf_offset_coverage: float = 0.5
    psf_max_offset_stars: int = 3
    psf_max_offset: float = 2.0
    psf_max_iterations: int = 20
    psf_tolerance: float = 1e-3
    psf_fit_cadences: int = 200
    halo_radius: float = 20.0
    halo_saturation_fraction: float = 0.5
    halo_bleed_margin: int = 2
    halo_min_snr: float = 10.0
    halo_max_neighbour_light: float = 0.05
    halo_split_gap: float = 0.5
    halo_tv_epsilon: float = 1e-5
    halo_max_iterations: int = 200
    halo_auto_tmag: float = 6.0
    halo_edge_flux: float = 0.01
    spill_method: str = "linpsf"

    def to_dict(self) -> dict[str, Any]:
        """All settings as a plain dict."""
        return asdict(self)


#: Name of the nested table of K2P2 overrides.
K2P2_TABLE = "k2p2"


def default_settings() -> dict[str, Any]:
    """The ``[photometry]`` defaults of :data:`tessphot.settings.DEFAULTS`."""
    return {**PhotometrySettings().to_dict(), K2P2_TABLE: {}}


def photometry_settings(values: Mapping[str, Any] | None) -> PhotometrySettings:
    """Settings from a ``[photometry]`` table (the ``k2p2`` entry is ignored here).

    Raises
    ------
    ValueError
        For an unknown setting.
    """
    values = {k: v for k, v in dict(values or {}).items() if k != K2P2_TABLE}
    known = {f.name for f in fields(PhotometrySettings)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown photometry setting(s) {sorted(unknown)}; known: {sorted(known)}")
    return PhotometrySettings(**values)
