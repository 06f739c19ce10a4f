"""Light curves of a whole simulated sector scored against the truth with issue 14's yardstick.

For every target with a light curve (:func:`score_sector_run`):

* **Residual.** ``flux - (a (F_t - mean F_t) + b)`` on every good cadence (simulated quality
  flag 0 and a finite flux; no trimming), with ``F_t`` the star's true flux and ``a, b``
  fitted (``a`` absorbs the aperture's enclosed fraction of a variable star, ``b`` the mean
  level with the neighbours' light; a constant star has ``a = 0``), after the true variable
  light of the other simulated stars inside an aperture's mask is taken out of its flux
  (:mod:`~tessphot.evaluation.scoring.neighbour_light`: astrophysical signal, not the
  pipeline's noise; the 1-hour rms with it left in is kept as ``rms_hour_neighbours``).
  It is made relative to the target's own light in the measurement,
  ``median(flux) (1 - contamination)`` with the pipeline's contamination. With simulated
  systematics, ``F_t`` is the flux as rendered (systematics included) and the fit also
  takes ``c m_t + d g_t``, their two shapes in a fixed aperture
  (:meth:`~tessphot.evaluation.scoring.systematics.TargetSystematics.raw_columns`: the
  neighbours' light times ``m``, the additive light): raw flux is scored against the truth
  *with* its systematics, so the noise ratios mean the same with them on.
* **Noise.** The robust RMS of the residual binned on 1 hour, every bin scaled to a full
  one (:func:`~tessphot.evaluation.scoring.optimal.full_bin_rms`: partly filled bins,
  around flagged cadences, would read as a slow term), and as the pipeline's ``rms_hour``
  (:func:`tessphot.lightcurve.diagnostics.rms_timescale`); on 30 minutes (per cadence).
* **Yardsticks.** The new one: the photon + sky + read noise of the star's S/N-optimal
  aperture (:mod:`tessphot.evaluation.scoring.optimal`) among the pixels of the simulated data,
  from its true PRF (the simulation's model at its mean true position), the true sky averaged
  over the good cadences, the read noise of its CCD output and the exposure of the headers;
  today's: the same noise terms for the aperture the pipeline used (``mask_size``) and the
  median measured flux (:mod:`tessphot.evaluation.scoring.photometry`).
* **Signals.** Sinusoid amplitudes (measured to 1 %) and transit depths (the regression of
  :func:`~tessphot.evaluation.scoring.signals.signal_recovery`, measured to 5 %) recovered.
* **Common mode.** For the quiet (constant) isolated stars of Tmag 11-14, the residual and
  the background error ``-(FLUX_BKG - n_pix B_true)`` (the flux error the background
  estimate alone makes; ``B_true`` the true sky at the star), each divided by the target's
  light and by the star's 30-min noise, per cadence; their medians over the stars are the
  common-mode series of :mod:`tessphot.evaluation.scoring.sector_report`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tessphot.evaluation.scoring.corrected import score_corrected_flux
from tessphot.evaluation.scoring.optimal import full_bin_rms, full_bin_std
from tessphot.evaluation.scoring.photometry import (
    find_truth,
    is_crowded,
    lightcurve_path,
    todo_rows,
)
from tessphot.evaluation.scoring.sector_lightcurve import (
    MeasuredLightCurve,
    measured_lightcurve,
    residual,
)
from tessphot.evaluation.scoring.sector_truth import Truth, read_truth
from tessphot.evaluation.scoring.signals import MIN_CADENCES, amplitude_ratio, signal_recovery
from tessphot.evaluation.scoring.small_apertures import score_small_apertures
from tessphot.evaluation.simulate.variability import CONSTANT, KIND_NAMES, SINUSOID, TRANSIT
from tessphot.lightcurve.diagnostics import HOUR_SECONDS, PPM, expected_noise, rms_timescale
from tessphot.paths import output_folder as default_output_folder
from tessphot.tasks import STATUS

#: Quiet stars of the common mode: constant, isolated, this Tmag range.
COMMON_MODE_TMAG = (11.0, 14.0)
#: A transit depth counts when the recovered fraction is measured to this (1 sigma).
DEPTH_MAX_ERROR = 0.05
#: Seconds per day.
DAY_SECONDS = 86400.0


@dataclass
class TargetScore:
    """The score of one target (NaN where it could not be measured)."""

    starid: int
    tmag: float
    status: str
    kind: str = "constant"
    contamination: float = math.nan
    mask_size: float = math.nan
    #: Good cadences (simulated quality 0) and how many of them had a finite flux.
    n_good: int = 0
    n_finite: int = 0
    #: 1-hour robust rms with every bin scaled to a full one
    #: (:func:`~tessphot.evaluation.scoring.optimal.full_bin_rms`), the plain one (the
    #: pipeline's ``rms_hour``), and the 30-minute one (relative to the target's light).
    rms_hour: float = math.nan
    rms_hour_plain: float = math.nan
    #: The standard deviation of ``rms_hour``'s bins (not robust, but smooth: for two runs
    #: of one sector compared star by star, :func:`~tessphot.evaluation.scoring.optimal.
    #: full_bin_std`).
    std_hour: float = math.nan
    rms_30min: float = math.nan
    #: ``rms_hour`` and ``std_hour`` with the neighbours' true variable light left in the
    #: residual.
    rms_hour_neighbours: float = math.nan
    std_hour_neighbours: float = math.nan
    #: The same for the plain sum of the S/N-optimal aperture on the same data, among the
    #: pixels no other target is centred on and outshines, corrected for the true motion
    #: (variable stars under half their optimal size only,
    #: :mod:`~tessphot.evaluation.scoring.small_apertures`); by how many standard errors the
    #: light curve's 1-hour variance exceeds that sum's, paired hour by hour (neighbours
    #: left in; negative: the light curve is quieter); and by how many the sum of the
    #: light curve's own aperture, made alike, exceeds it (the aperture's choice alone).
    optimal_ap_rms_hour: float = math.nan
    optimal_ap_rms_hour_neighbours: float = math.nan
    optimal_ap_std_hour_neighbours: float = math.nan
    optimal_ap_excess_sigma: float = math.nan
    own_ap_excess_sigma: float = math.nan
    #: Noise limits (relative) of the S/N-optimal aperture and of the pipeline's aperture.
    limit_hour: float = math.nan
    limit_30min: float = math.nan
    own_limit_hour: float = math.nan
    optimal_npix: float = math.nan
    amplitude_ratio: float = math.nan
    depth_ratio: float = math.nan
    #: The injected sinusoid's period [d] (NaN for other signals).
    period: float = math.nan
    #: The corrected flux (``FLUX_CORR``, in the target's own light) against the intrinsic
    #: signal (:mod:`~tessphot.evaluation.scoring.corrected`): 1-hour (full bins) and
    #: per-cadence rms (relative), the fraction of the signal kept and its uncertainty
    #: (noise over signal), the fraction of the multiplicative systematics left (NaN: not
    #: corrected).
    corr_rms_hour: float = math.nan
    corr_rms_cadence: float = math.nan
    corr_signal_kept: float = math.nan
    corr_signal_error: float = math.nan
    corr_systematics_left: float = math.nan

    @property
    def crowded(self) -> bool:
        """Whether the pipeline's contamination exceeds 10 %."""
        return is_crowded(self.contamination)

    @property
    def variable(self) -> bool:
        """Whether a signal was injected."""
        return self.kind != KIND_NAMES[CONSTANT]

    @property
    def ratio_hour(self) -> float:
        """1-hour noise over the optimal aperture's limit (issue 14's yardstick)."""
        return self.rms_hour / self.limit_hour

    @property
    def ratio_30min(self) -> float:
        """30-minute noise over the optimal aperture's limit."""
        return self.rms_30min / self.limit_30min

    @property
    def plain_ratio_hour(self) -> float:
        """Plain 1-hour noise (partly filled bins as they are) over the optimal limit."""
        return self.rms_hour_plain / self.limit_hour

    @property
    def own_ratio_hour(self) -> float:
        """Plain 1-hour noise over the limit of the aperture used (today's yardstick)."""
        return self.rms_hour_plain / self.own_limit_hour

    @property
    def small_aperture(self) -> bool:
        """Whether the aperture used is under half the optimal size."""
        return self.mask_size < 0.5 * self.optimal_npix


@dataclass
class SectorScore:
    """Scores of every target of a simulated sector and the quiet stars' residual series."""

    targets: list[TargetScore] = field(default_factory=list)
    #: Mid-cadence times [TJD] and orbit number (0, 1, ...) of the truth's cadences.
    tmid: np.ndarray = field(default_factory=lambda: np.empty(0))
    orbit: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    #: Per quiet star (columns), per cadence (rows): residual and background error over the
    #: star's 30-min noise (NaN on bad cadences).
    quiet_flux: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    quiet_background: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    #: Per quiet star and cadence: background estimate minus truth [e-/s/px].
    background_error: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    #: Per quiet star and cadence: the true sky at the star [e-/s/px].
    background_true: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    #: Per quiet star and cadence: its true position minus its mean (row, column) [px].
    quiet_drow: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    quiet_dcol: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))


def orbits_of(tmid: np.ndarray, min_gap: float = 0.5) -> np.ndarray:
    """Orbit number of every cadence: a new orbit after each gap above ``min_gap`` [d].

    Parameters
    ----------
    tmid : numpy.ndarray
        Mid-cadence times [d], increasing.
    min_gap : float
        Least gap between orbits [d].

    Returns
    -------
    numpy.ndarray
        0 for the first orbit, 1 for the next, ...
    """
    tmid = np.asarray(tmid, dtype=float)
    if tmid.size == 0:
        return np.empty(0, dtype=int)
    return np.concatenate([[0], np.cumsum(np.diff(tmid) > min_gap)]).astype(int)


@dataclass
class Residual:
    """A light curve's residual against the truth (:func:`residual`)."""

    #: Indices (into the truth's cadences) of the cadences used.
    cadences: np.ndarray
    #: Residual relative to the target's light in the measurement.
    relative: np.ndarray
    #: The target's light in the measurement [flux units].
    target_flux: float
    #: The light curve's background (FLUX_BKG, summed over the aperture) on those cadences.
    background: np.ndarray
    #: ``relative`` with the neighbours' true variable light left in.
    left_in: np.ndarray
    #: Science rows and columns of the light curve's photometric pixels.
    mask: tuple[np.ndarray, np.ndarray]


def _own_limit(truth: Truth, i: int, median: float, mask_size: float) -> float:
    """Today's yardstick: noise of the aperture used, relative to the median flux, 1 hour."""
    if not (median > 0 and mask_size > 0):
        return math.nan
    noise = expected_noise(
        flux=median,
        n_pix=mask_size,
        background=float(truth.sky_at(truth.row[i : i + 1], truth.col[i : i + 1])[0]),
        exposure_time=truth.exposure_time,
        n_frames=truth.num_coadded,
        cadence=truth.cadence,
        read_noise=float(truth.read_noise_at(truth.col[i : i + 1])[0]),
        timescale=HOUR_SECONDS,
        components=True,
    )
    return math.sqrt(noise["shot"] ** 2 + noise["sky"] ** 2 + noise["read"] ** 2) / 1e6


def _optimal(truth: Truth, i: int, score: TargetScore) -> None:
    """Fill the optimal aperture's size and noise limits of target ``i``."""
    optimal = truth.optimal_aperture(i)
    if optimal is None:
        return
    best = optimal[0]
    score.optimal_npix = best.npix
    score.limit_hour = best.noise(HOUR_SECONDS, truth.cadence)
    score.limit_30min = best.noise(truth.cadence, truth.cadence)


def _signals(truth: Truth, i: int, m: MeasuredLightCurve, score: TargetScore) -> None:
    """Recovered sinusoid amplitude or transit depth of target ``i``."""
    signal = truth.signals[i]
    kind = int(signal["kind"])
    t = truth.tmid[m.cadences]
    true_flux = truth.flux[m.cadences, i]
    if kind == SINUSOID:
        score.period = float(signal["period"])
        score.amplitude_ratio = amplitude_ratio(
            t, m.flux, true_flux, float(signal["period"]), score.contamination
        )
    elif kind == TRANSIT:
        recovery = signal_recovery(t, m.flux, true_flux, score.contamination)
        if recovery.fraction_error <= DEPTH_MAX_ERROR:
            score.depth_ratio = recovery.fraction


def score_target(truth: Truth, i: int, path: Path, score: TargetScore) -> Residual | None:
    """Score target ``i`` of the truth from its light curve, in place.

    Parameters
    ----------
    truth : Truth
        The truth of the targets.
    i : int
        The target's index in ``truth``.
    path : pathlib.Path
        Its light curve.
    score : TargetScore
        Its score, filled in (contamination and mask size given).

    Returns
    -------
    Residual or None
        The residual, with the background error (None without enough good cadences).
    """
    score.kind = KIND_NAMES[int(truth.signals[i]["kind"])]
    _optimal(truth, i, score)
    m = measured_lightcurve(truth, i, path)
    score.n_good, score.n_finite = m.n_good, m.n_finite
    if m.n_finite < MIN_CADENCES:
        return None
    systematics = truth.systematics
    shapes = None if systematics is None else systematics.raw_columns(i, m.cadences)
    relative, target = residual(
        m.flux, truth.flux[m.cadences, i], score.contamination, systematics=shapes
    )
    t = truth.tmid[m.cadences]
    hour, cadence = HOUR_SECONDS / DAY_SECONDS, truth.cadence / DAY_SECONDS
    score.rms_hour = full_bin_rms(t, relative, hour, cadence)
    score.std_hour = full_bin_std(t, relative, hour, cadence)
    score.rms_hour_plain = rms_timescale(t, relative, hour)
    score.rms_30min = rms_timescale(t, relative, cadence)
    score.rms_hour_neighbours, score.std_hour_neighbours = score.rms_hour, score.std_hour
    left_in = relative
    if np.any(m.neighbours):
        left_in, _ = residual(
            m.flux + m.neighbours,
            truth.flux[m.cadences, i],
            score.contamination,
            systematics=shapes,
        )
        score.rms_hour_neighbours = full_bin_rms(t, left_in, hour, cadence)
        score.std_hour_neighbours = full_bin_std(t, left_in, hour, cadence)
    median = float(np.median(m.flux))
    own = _own_limit(truth, i, median, score.mask_size)
    # Today's yardstick is relative to the median flux; the residual to the target's light.
    score.own_limit_hour = own * median / target if target > 0 else math.nan
    _signals(truth, i, m, score)
    _corrected(truth, i, m, score)
    return Residual(m.cadences, relative, target, m.background, left_in, m.mask)


def _corrected(truth: Truth, i: int, m: MeasuredLightCurve, score: TargetScore) -> None:
    """Score the light curve's ``FLUX_CORR`` when it has one."""
    corrected = score_corrected_flux(truth, i, m.cadences, m.corrected)
    if not math.isfinite(corrected.rms_hour_ppm):
        return
    score.corr_rms_hour = corrected.rms_hour_ppm / PPM
    score.corr_rms_cadence = corrected.rms_cadence_ppm / PPM
    score.corr_signal_kept = corrected.signal_kept
    signal = np.std(truth.intrinsic_signal(i)[corrected.cadences])
    if signal > 0:
        n = corrected.cadences.size
        score.corr_signal_error = score.corr_rms_cadence / (signal * math.sqrt(n))
    score.corr_systematics_left = corrected.multiplicative_left


@dataclass
class _Quiet:
    """The quiet stars' series, one list entry (a column over the cadences) per star."""

    n_cadences: int
    flux: list = field(default_factory=list)
    background: list = field(default_factory=list)
    error: list = field(default_factory=list)
    true: list = field(default_factory=list)
    drow: list = field(default_factory=list)
    dcol: list = field(default_factory=list)

    def add(self, truth: Truth, i: int, res: Residual, score: TargetScore) -> None:
        """Add target ``i``'s residual and background error, over its 30-min noise."""
        columns = [np.full(self.n_cadences, math.nan) for _ in range(4)]
        sky = truth.sky[res.cadences, i]
        bkg_error = res.background - score.mask_size * sky
        columns[0][res.cadences] = res.relative / score.rms_30min
        columns[1][res.cadences] = -bkg_error / res.target_flux / score.rms_30min
        columns[2][res.cadences] = bkg_error / score.mask_size
        columns[3][res.cadences] = sky
        for target, column in zip(
            (self.flux, self.background, self.error, self.true), columns, strict=True
        ):
            target.append(column)
        self.drow.append(truth.drow[:, i])
        self.dcol.append(truth.dcol[:, i])

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The six series as (cadence, star) arrays."""
        return tuple(
            np.column_stack(x) if x else np.empty((self.n_cadences, 0))
            for x in (self.flux, self.background, self.error, self.true, self.drow, self.dcol)
        )


def is_quiet(score: TargetScore) -> bool:
    """Whether a target counts for the common mode: constant, isolated, Tmag 11-14."""
    lo, hi = COMMON_MODE_TMAG
    return (
        not score.variable
        and not score.crowded
        and lo <= score.tmag < hi
        and score.rms_30min > 0
        and score.mask_size > 0
    )


def score_sector_run(
    input_folder: str | Path,
    output_folder: str | Path | None = None,
    truth_file: str | Path | None = None,
    prf_dir: str | None = None,
) -> SectorScore:
    """Score every task of ``<input_folder>/todo.sqlite`` with issue 14's yardstick.

    Parameters
    ----------
    input_folder : path-like
        The simulated sector's folder (``truth/truth_*.hdf5``, ``todo.sqlite``).
    output_folder : path-like, optional
        Light-curve root (default as ``tessphot run``).
    truth_file : path-like, optional
        The truth file (default the only ``truth/truth_*.hdf5``).
    prf_dir : str, optional
        Folder of the PRF models (default the simulation's own).

    Returns
    -------
    SectorScore
    """
    folder = Path(input_folder)
    truth_path = Path(truth_file) if truth_file else find_truth(folder)
    output = Path(output_folder) if output_folder else default_output_folder(folder)
    rows = todo_rows(folder)
    starids = np.array([r[0] for r in rows], dtype=np.int64)
    truth = read_truth(truth_path, starids, prf_dir, neighbours=True, scene=True)
    index = {int(s): i for i, s in enumerate(truth.starid)}
    quiet = _Quiet(truth.tmid.size)
    result = SectorScore(tmid=truth.tmid, orbit=orbits_of(truth.tmid))
    small = []  # variable stars under half their optimal aperture
    for starid, tmag, status, lightcurve, contamination, mask_size in rows:
        score = TargetScore(
            starid=int(starid),
            tmag=float(tmag),
            status=STATUS(status).name if status is not None else "NOT_RUN",
            contamination=math.nan if contamination is None else float(contamination),
            mask_size=math.nan if mask_size is None else float(mask_size),
        )
        result.targets.append(score)
        i = index.get(int(starid))
        path = lightcurve_path(folder, output, lightcurve)
        if i is None or path is None or score.status not in ("OK", "WARNING"):
            continue
        res = score_target(truth, i, path, score)
        if res is not None and is_quiet(score):
            quiet.add(truth, i, res, score)
        if res is not None and score.kind != "constant" and score.small_aperture:
            small.append((i, score, res))
    score_small_apertures(folder, truth, small)
    (
        result.quiet_flux,
        result.quiet_background,
        result.background_error,
        result.background_true,
        result.quiet_drow,
        result.quiet_dcol,
    ) = quiet.arrays()
    return result
