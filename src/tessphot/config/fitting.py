"""Settings of the PRF-fitting methods: linear PSF and PSF photometry.

Tables ``[photometry.linpsf]`` (:class:`LinPSFSettings`) and ``[photometry.psf]``
(:class:`PSFSettings`); PSF photometry also uses the fit region and the choice of stars of
``[photometry.linpsf]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tessphot.config.fields import Table, setting

#: What PSF photometry can fit of the positions (``[photometry.psf] positions``).
POSITION_MODELS = ("sector", "cadence")


@dataclass(frozen=True)
class LinPSFSettings(Table):
    """Settings of linear PSF photometry (method ``linpsf``).

    Attributes
    ----------
    fit_radius : float
        The pixels within this distance of the target are fitted [px] (> 0).
    fit_light : float
        Neighbours putting at least this fraction of the target's catalogue flux on the fit
        region are fitted; fainter ones are subtracted at their catalogue flux (>= 0).
    max_stars : int
        Most stars fitted (the target included; the brightest on the region) (>= 1).
    max_inflation : float
        A neighbour is fitted only if fitting it raises the variance of the target's flux
        by at most this factor (at the mean positions and typical pixel variances);
        otherwise it is too blended to separate and is subtracted at its catalogue flux
        (>= 1).
    min_separation : float
        Neighbours left out of the fit as too blended and closer than this to the target
        are listed as skipped targets (their light curve would be the target's) [px] (>= 0).
    background : bool
        Fit a constant local background on every cadence (on top of the prepared
        background).
    smooth_hours : float
        The neighbours' fluxes and the background offset of the first pass are smoothed
        over this window before the target's flux is fitted alone (variability of the
        neighbours faster than this leaks into the target); 0: every parameter free on every
        cadence [h] (>= 0).
    smooth_sigma : float
        ... except on cadences where a straight line over that window does not describe
        them (residual chi-square this many standard deviations above its degrees of
        freedom): there every parameter stays free (> 0).
    bleed_margin : int
        Saturated pixels left out of the fit are widened by this many pixels along their
        column (the partly filled tips of the bleed columns) and by one across [px] (>= 0).
    saturated_tmag : float
        Targets at least this bright are fitted over the PRF's whole footprint (6.5 px)
        instead of ``fit_radius``: with their saturated core left out, the fit rests on the
        wings [Tmag].
    fit_shifts : bool
        For a target whose saturated pixels are left out, fit its position shifts on every
        cadence too (linearised): its wings' light depends steeply on the position, and the
        jitter model's 0.001-px errors would move its flux by 0.1 %.
    """

    TABLE = "photometry.linpsf"

    fit_radius: float = setting(4.0, unit="px", gt=0)
    fit_light: float = setting(0.01, ge=0)
    max_stars: int = setting(12, ge=1)
    max_inflation: float = setting(1.05, ge=1)
    min_separation: float = setting(1.0, unit="px", ge=0)
    background: bool = setting(True)
    smooth_hours: float = setting(6.0, unit="h", ge=0)
    smooth_sigma: float = setting(4.0, unit="sigma", gt=0)
    bleed_margin: int = setting(2, unit="px", ge=0)
    saturated_tmag: float = setting(7.5, unit="Tmag")
    fit_shifts: bool = setting(True)


@dataclass(frozen=True)
class PSFSettings(Table):
    """Settings of PSF photometry (method ``psf``): what is fitted of the positions.

    Attributes
    ----------
    positions : str
        What is fitted of the positions: ``"sector"``, an offset from the catalogue position
        per star over the whole data (plus a drift with ``drift``), the jitter model on top;
        ``"cadence"``, in addition the target's own offset on every cadence (for stars that
        move in ways the jitter model does not describe; noisier for faint stars).
    drift : bool
        The offsets drift linearly in time (an unknown or wrong proper motion); False:
        constant offsets.
    offset_light : float
        Fitted neighbours putting at least this fraction of the target's light on the fit
        region get fitted offsets too; the others stay at their catalogue positions (plus
        the jitter model) (>= 0).
    offset_coverage : float
        ... and at least this fraction of their own light (their position is constrained:
        not a star on the edge of the region) (0-1).
    max_offset_stars : int
        Most stars with fitted offsets (the target included; the brightest on the region)
        (>= 1).
    max_offset : float
        Largest offset of a star from its catalogue position (plus jitter) at any time of
        the data. A neighbour running into it stays at its catalogue position; when the
        target does (or the fit does not converge), the catalogue positions are used and a
        warning is given [px] (> 0).
    max_iterations : int
        Most Levenberg-Marquardt steps tried by a position fit (each a pass over its
        cadences) (>= 1).
    tolerance : float
        A position fit has converged when its next step would move no star by more than
        this [px] (> 0).
    fit_cadences : int
        The offsets over the whole data are fitted on at most this many good cadences,
        evenly spread (the fluxes are then fitted on every cadence) (>= 1).
    """

    TABLE = "photometry.psf"

    positions: str = setting("sector", choices=POSITION_MODELS)
    drift: bool = setting(True)
    offset_light: float = setting(0.2, ge=0)
    offset_coverage: float = setting(0.5, ge=0, le=1)
    max_offset_stars: int = setting(3, ge=1)
    max_offset: float = setting(2.0, unit="px", gt=0)
    max_iterations: int = setting(20, ge=1)
    tolerance: float = setting(1e-3, unit="px", gt=0)
    fit_cadences: int = setting(200, ge=1)
