"""Settings of the corrections stage: ``[correct]`` and its sub-tables.

``[correct.cbv]`` drives the cotrending basis vectors (:mod:`tessphot.correct.cbv`),
``[correct.fit]`` their fit to each star and its fallback (:mod:`tessphot.correct.fit`) and
the prior from the neighbours (:mod:`tessphot.correct.prior`), ``[correct.ensemble]`` the
ensemble corrector (:mod:`tessphot.correct.ensemble`) and ``[correct.jumps]`` the search
for jumps left in the corrected flux (:mod:`tessphot.correct.jumps`). Every value is
written into the CBV files and the corrected light curves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tessphot.config.fields import Table, setting


@dataclass(frozen=True)
class CBVSettings(Table):
    """Settings of the cotrending basis vectors (:func:`tessphot.correct.cbv.build_cbvs`).

    Attributes
    ----------
    max_vectors : int
        Most single-scale vectors kept (>= 1); fewer when fewer are significant.
    significance : float
        A vector is kept when its singular value exceeds this many times the largest one
        that white noise of the same shape gives (the Marchenko-Pastur edge of the
        noise-whitened matrix, ``sqrt(stars) + sqrt(cadences)``; > 0).
    max_nan_fraction : float
        Stars missing more than this fraction of the good cadences are not used (0-1).
    cadence_nan_fraction : float
        Good cadences where more than this fraction of the used stars are missing are left
        out of the vectors (NaN there; 0-1).
    quiet_fraction : float
        The quietest fraction of the stars (by the robust standard deviation of their
        relative flux) goes on to the correlation ranking (0-1) ...
    correlated_fraction : float
        ... of which this fraction, the most correlated with the others (median absolute
        correlation), builds the vectors (0-1). PDC and TASOC keep half; the whitened SVD
        weighs each star by its noise already, and on the synthetic tests more stars gave
        less noisy vectors (the bright stars' corrected scatter: 4 % more at 0.5, 0.3 % at
        0.8).
    min_stars : int
        Fewest stars a CBV set is built from (>= 2); with fewer it has no vectors.
    correlation_sample : int
        Each star's median absolute correlation is taken over this many other stars drawn
        at random (>= 10): the full matrix of 5000 stars costs 25 million correlations.
    noise_floor_quantile : float
        Stars are weighted by one over their point-to-point noise, floored at this quantile
        of the noises of the stars used, so that the few brightest do not decide the vectors
        alone (0-1).
    clip_sigma : float
        A star whose residual after the vectors exceeds the median of the stars by this many
        robust standard deviations is dropped and the vectors made again [sigma] (> 0).
    max_leverage : float
        A star holding more than this many times its even share (``1/stars``) of a vector's
        weight is dropped and the vectors made again (> 1).
    element_sigma : float
        Single values further than this from the vectors' model are replaced by the model
        before the next pass (cosmic rays, flares) [sigma] (> 0).
    iterations : int
        Most passes of (vectors, clipping) (>= 1).
    max_spikes : int
        Most spike vectors (>= 0; 0: none).
    spike_span : int
        Cadences from each momentum dump on (the dump's included) that a spike may touch
        (>= 1).
    spike_baseline : int
        Cadences after a spike whose median is the level the spike stands out from (>= 1).
    smooth_hours : float
        Width of the Savitzky-Golay filter that smooths each vector between its breaks
        (momentum dumps, gaps), so that its fit adds less noise to bright stars [h] (>= 0;
        0: no smoothing).
    seed : int
        Seed of the random numbers (correlation sample, randomized SVD).
    """

    TABLE = "correct.cbv"

    max_vectors: int = setting(8, ge=1)
    significance: float = setting(1.2, gt=0)
    max_nan_fraction: float = setting(0.5, ge=0, le=1)
    cadence_nan_fraction: float = setting(0.5, ge=0, le=1)
    quiet_fraction: float = setting(0.9, gt=0, le=1)
    correlated_fraction: float = setting(0.8, gt=0, le=1)
    min_stars: int = setting(20, ge=2)
    correlation_sample: int = setting(400, ge=10)
    noise_floor_quantile: float = setting(0.02, ge=0, le=1)
    clip_sigma: float = setting(5.0, unit="sigma", gt=0)
    max_leverage: float = setting(25.0, gt=1)
    element_sigma: float = setting(6.0, unit="sigma", gt=0)
    iterations: int = setting(5, ge=1)
    max_spikes: int = setting(3, ge=0)
    spike_span: int = setting(1, unit="cadences", ge=1)
    spike_baseline: int = setting(4, unit="cadences", ge=1)
    smooth_hours: float = setting(6.0, unit="h", ge=0)
    seed: int = setting(2024)


@dataclass(frozen=True)
class FitSettings(Table):
    """Settings of the fit of the vectors to one star (:func:`tessphot.correct.fit.fit_cbvs`).

    Attributes
    ----------
    clip_sigma : float
        Cadences whose residual departs from the residual's median by more than this many
        robust standard deviations are left out of the fit (and flagged) [sigma] (> 0).
    clip_iterations : int
        Most passes of (fit, clipping) (>= 0).
    bic : bool
        Least squares: the number of single-scale vectors (the first ``n``) chosen by the
        Bayesian information criterion; else all of them.
    variability_projection : float
        MAP: the star's low-frequency variance (left after the prior's mean correction),
        times the number of cadences and this fraction, counts as noise of each single-scale
        coefficient (0-1): the share of an intrinsic signal's power a smooth vector can
        catch (a long-period signal puts most of its power into one or two).
    prior_weight : float
        Multiplies the prior's precision in the MAP fit (> 0; 1: the Bayesian weight, where
        the star's own variability counts as noise of the fit, so a variable star leans on
        its neighbours).
    max_noise_added : float
        A correction that raises the point-to-point scatter by more than this fraction is
        replaced by the next less damaging one (>= 0).
    max_extra_removed : float
        A correction that removes more than this fraction of the star's low-frequency
        variance beyond what the prior's mean correction removes (counted as 0 when that
        adds variance) is replaced by the next less damaging one (only with a prior; >= 0).
    variability_window : float
        Width of the running mean that makes the low-frequency light curve of the
        variability removed [h] (> 0).
    prior_neighbours : int
        Stars nearest in (row, column, Tmag) whose least-squares coefficients make a star's
        prior (>= 3).
    prior_position_scale : float
        Distance on the CCD that counts as one unit of the neighbour distance [px] (> 0) ...
    prior_tmag_scale : float
        ... and difference of magnitude [mag] (> 0).
    prior_clip_sigma : float
        Neighbours whose coefficients lie beyond this Mahalanobis distance from the
        weighted mean are left out of the prior [sigma] (> 0).
    prior_min_variance : float
        Floor of the prior's variance of a coefficient, relative to the largest (>= 0):
        keeps the covariance invertible.
    """

    TABLE = "correct.fit"

    clip_sigma: float = setting(4.5, unit="sigma", gt=0)
    clip_iterations: int = setting(3, ge=0)
    bic: bool = setting(True)
    variability_projection: float = setting(0.5, ge=0, le=1)
    prior_weight: float = setting(1.0, gt=0)
    max_noise_added: float = setting(0.05, ge=0)
    max_extra_removed: float = setting(0.5, ge=0)
    variability_window: float = setting(12.0, unit="h", gt=0)
    prior_neighbours: int = setting(100, ge=3)
    prior_position_scale: float = setting(300.0, unit="px", gt=0)
    prior_tmag_scale: float = setting(1.0, unit="mag", gt=0)
    prior_clip_sigma: float = setting(4.0, unit="sigma", gt=0)
    prior_min_variance: float = setting(1e-6, ge=0)


@dataclass(frozen=True)
class EnsembleSettings(Table):
    """Settings of the ensemble corrector (:func:`tessphot.correct.ensemble.fit_ensemble`).

    Attributes
    ----------
    candidates : int
        The nearest stars on the CCD considered (>= 1) ...
    members : int
        ... of which at most this many quiet ones make the ensemble (>= 1).
    min_members : int
        Fewest members for a correction (>= 1); with fewer, none is made.
    quiet : float
        A candidate is quiet when the robust scatter of its flux over a first ensemble is at
        most this many times its point-to-point scatter (1 for white noise; >= 1) ...
    max_range : float
        ... and the range (1st to 99th percentile) of that relative flux at most this
        (relative flux; > 0).
    """

    TABLE = "correct.ensemble"

    candidates: int = setting(200, ge=1)
    members: int = setting(100, ge=1)
    min_members: int = setting(10, ge=1)
    quiet: float = setting(1.5, ge=1)
    max_range: float = setting(0.05, gt=0)


@dataclass(frozen=True)
class JumpSettings(Table):
    """Settings of the jumps found and corrected (:func:`tessphot.correct.jumps.find_jumps`).

    Attributes
    ----------
    enabled : bool
        Search the corrected flux for jumps (persistent steps the corrector left) and
        correct them; False: no search (``CORRJUMP = 0``).
    window : float
        Duration of flux on each side of a candidate step whose median is the side's level
        and which must stay flat [h] (>= 12: much longer than a transit, so that a transit,
        an eclipse or a flare, back at its level within hours, is no step).
    blocks : int
        Each side is cut into this many blocks whose medians must agree within their noise
        (the side's flatness; >= 2). With the default window, 6-h blocks: a transit or a
        slow variation shows in them.
    false_alarm : float
        Probability that white noise gives a jump in one light curve, each search split
        evenly between the candidates at momentum dumps and gaps and every other cadence
        (0-0.5). Sets the significance threshold: ``isf(false_alarm / 4 / candidates)`` of
        the normal distribution for each class (two-sided, Bonferroni over its candidates).
    flat_probability : float
        A side whose block medians scatter more than chi-square gives with this probability
        for white noise is not flat, and the step is no jump (0-0.5).
    max_jumps : int
        Most jumps corrected in one light curve (>= 1).
    min_gap : float
        Time between two usable cadences from which the step between them is a candidate at
        a gap [h] (> 0).
    """

    TABLE = "correct.jumps"

    enabled: bool = setting(True)
    window: float = setting(24.0, unit="h", ge=12)
    blocks: int = setting(4, ge=2)
    false_alarm: float = setting(1e-3, gt=0, lt=0.5)
    flat_probability: float = setting(1e-3, gt=0, lt=0.5)
    max_jumps: int = setting(3, ge=1)
    min_gap: float = setting(2.0, unit="h", gt=0)


@dataclass(frozen=True)
class CorrectSettings(Table):
    """Settings of the corrections stage (table ``[correct]``).

    Attributes
    ----------
    method : str
        The corrector: ``"cbv"`` (cotrending basis vectors with a prior from the neighbours)
        or ``"ensemble"`` (a star over the weighted mean of its quiet neighbours, for 30-min FFI
        data).
    gzip_level : int
        Compression level of the rewritten ``.fits.gz`` light curves (as ``[photometry]
        gzip_level``; 0-9).
    cbv_file : str
        CBVs to use instead of making them from the run's own light curves: a SPOC CBV file
        of the sector (``*_cbv.fits`` from MAST; its camera and CCD chosen per group) or a
        tessphot one; resampled onto the light curves' cadences. For stars on their own
        (a cutout, a TPF), which have no neighbours to make vectors from. Empty: none.
    cbv : CBVSettings
        Table ``[correct.cbv]``.
    fit : FitSettings
        Table ``[correct.fit]``.
    ensemble : EnsembleSettings
        Table ``[correct.ensemble]``.
    jumps : JumpSettings
        Table ``[correct.jumps]``.
    """

    TABLE = "correct"

    method: str = setting("cbv", choices=("cbv", "ensemble"))
    gzip_level: int = setting(1, ge=0, le=9)
    cbv_file: str = setting("", path=True)
    cbv: CBVSettings = dataclasses.field(default_factory=CBVSettings)
    fit: FitSettings = dataclasses.field(default_factory=FitSettings)
    ensemble: EnsembleSettings = dataclasses.field(default_factory=EnsembleSettings)
    jumps: JumpSettings = dataclasses.field(default_factory=JumpSettings)
