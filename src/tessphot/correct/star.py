"""One light curve's correction: fitted (CBVs, ensemble, or none) and written.

:func:`correct_star` runs in the leading process, a ``-j`` worker or an MPI rank: all it
needs comes in its :class:`StarJob`. ``FLUX_CORR`` = ``1e6 (flux / model - 1) / (1 -
contamination)`` [ppm], ``FLUX_CORR_ERR`` likewise, with the jumps the corrector left
found and removed (:mod:`tessphot.correct.jumps`, ``[correct.jumps]``; whatever the
corrector, ``none`` too). The corrector and its parameters go into the primary header, with
the number of jumps corrected (``CORRJUMP``); ``QUALITY`` gets TASOC's corrector bits
(:mod:`tessphot.correct.quality`): 4 (``SigmaClip``) on the isolated cadences the fit
clipped as outliers, 8 (``JumpAdditiveConstant``) on the cadences at each jump corrected.
The corrections' bits of an earlier correction are cleared first; ``FLUX_RAW`` and every
other bit stay as they are.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tessphot.config.correct import CorrectSettings
from tessphot.correct.cbv import CBVSet
from tessphot.correct.ensemble import EnsembleFit, fit_ensemble
from tessphot.correct.fit import CBVFit, corrected_ppm, fit_cbvs
from tessphot.correct.jumps import Jump, find_jumps, jump_quality, remove_jumps
from tessphot.correct.prior import Prior
from tessphot.correct.quality import QUALITY_CORRECTIONS, QUALITY_SIGMA_CLIP
from tessphot.correct.store import CorrectionResult, CorrectionTask
from tessphot.io.errors import FileProblem
from tessphot.lightcurve.diagnostics import PPM, ptp, rms_timescale
from tessphot.lightcurve.writer import set_corrected_flux
from tessphot.paths import stored_lightcurve
from tessphot.tasks import STATUS
from tessphot.version import __version__

logger = logging.getLogger(__name__)

#: Longest ``CBV_SRC`` value written [characters].
CBV_SOURCE_LENGTH = 60


@dataclass
class StarJob:
    """Everything needed to correct one light curve (sent to a worker)."""

    task: CorrectionTask
    #: The input and output folders.
    folders: tuple[Path, Path]
    #: The star's raw flux and error on the group's cadence grid [e-/s].
    flux: np.ndarray
    flux_err: np.ndarray
    #: Index of each row of the star's file in the grid.
    rows: np.ndarray
    #: The grid's usable cadences and times.
    good: np.ndarray
    time: np.ndarray
    settings: CorrectSettings
    #: The grid's momentum dumps (None: not known).
    dumps: np.ndarray | None = None
    #: The cbv corrector: the group's vectors and the star's prior.
    cbvs: CBVSet | None = None
    prior: Prior | None = None
    #: The ensemble corrector: the candidates' raw flux, distances [px] and TIC numbers.
    others: np.ndarray | None = None
    distances: np.ndarray | None = None
    starids: np.ndarray | None = None
    #: No corrector: why (the relative raw flux is written).
    unfitted: str | None = None


@dataclass
class Unfitted:
    """No correction: the model is the star's median flux (``FLUX_CORR``: relative raw)."""

    model: np.ndarray
    reason: str
    method: str = "none"
    noise_added: float = 0.0


def correct_star(job: StarJob) -> CorrectionResult:
    """Correct one light curve and write its ``FLUX_CORR``; its result.

    A light curve that cannot be corrected or written is an ERROR result with the problem,
    not an exception.
    """
    start = time.perf_counter()
    task = job.task
    try:
        if job.unfitted is not None:
            usable = job.good & np.isfinite(job.flux)
            median = float(np.median(job.flux[usable])) if usable.any() else math.nan
            fit: CBVFit | EnsembleFit | Unfitted = Unfitted(
                np.full(job.flux.shape, median), job.unfitted
            )
        elif job.others is not None:
            fit = fit_ensemble(
                job.flux,
                job.others,
                good=job.good,
                distances=job.distances,
                starids=job.starids,
                settings=job.settings.ensemble,
            )
        else:
            fit = fit_cbvs(
                job.flux, job.cbvs, good=job.good, prior=job.prior, settings=job.settings.fit
            )
        result = _write(job, fit)
    except (FileProblem, OSError, ValueError, np.linalg.LinAlgError) as err:
        logger.error("TIC %d (%s): %s", task.starid, task.lightcurve, err)
        result = error_result(task, str(err))
    result.elaptime = time.perf_counter() - start
    return result


def isolated(clipped: np.ndarray) -> np.ndarray:
    """The clipped cadences whose neighbours were not clipped (single-cadence outliers)."""
    clipped = np.asarray(clipped, dtype=bool)
    before = np.concatenate([[False], clipped[:-1]])
    after = np.concatenate([clipped[1:], [False]])
    return clipped & ~before & ~after


def _cards(task: CorrectionTask, fit: CBVFit | EnsembleFit | Unfitted, dilution: float) -> list:
    """The primary header's cards of a correction."""
    corrector = {EnsembleFit: "ensemble", Unfitted: "none"}.get(type(fit), "cbv")
    cards: list[tuple[str, Any, str]] = [
        ("CORRMET", corrector, "corrector"),
        ("CORRVER", __version__, "tessphot version of the correction"),
        ("CORRFIT", fit.method, "fit: map, ls, ensemble or none"),
        ("CORRDCON", bool(dilution < 1.0), "FLUX_CORR in the target's own light"),
    ]
    if isinstance(fit, EnsembleFit):
        return cards + fit.header_cards()
    if isinstance(fit, Unfitted):
        return cards
    cards += [
        ("CBV_AREA", int(task.cbv_area), "CBV area (camera, CCD, ring)"),
        ("CBV_NUM", int(fit.n_vectors), "number of CBVs fitted"),
    ]
    values = np.asarray(fit.coefficients, dtype=float)
    cards += [
        (f"CBV_C{i}", float(c), f"coefficient of CBV {i}")
        for i, c in enumerate(values[: fit.n_vectors], start=1)
    ]
    cards += [
        (f"CBV_S{i}", float(c), f"coefficient of spike vector {i}")
        for i, c in enumerate(values[fit.n_vectors :], start=1)
    ]
    return cards


def _source_cards(cbvs: CBVSet | None) -> list[tuple[str, Any, str]]:
    """Where the CBVs came from, when not from the run's own light curves."""
    source = None if cbvs is None else cbvs.settings.get("source")
    return [] if not source else [("CBV_SRC", str(source)[:CBV_SOURCE_LENGTH], "CBVs from")]


def _jumps(job: StarJob, ppm: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, list[Jump]]:
    """``FLUX_CORR`` with the jumps the corrector left removed, and the jumps."""
    settings = job.settings.jumps
    if not settings.enabled:
        return ppm, []
    index = job.rows
    dumps = None if job.dumps is None else job.dumps[index]
    jumps = find_jumps(ppm, job.time[index], usable=usable, dumps=dumps, settings=settings)
    for jump in jumps:
        where = " at a momentum dump" if jump.at_dump else " after a gap" if jump.at_gap else ""
        logger.info(
            "TIC %d: jump of %.0f ppm (%.1f sigma) at row %d%s corrected",
            job.task.starid,
            jump.size,
            jump.significance,
            jump.row,
            where,
        )
    return remove_jumps(ppm, jumps), jumps


def _write(job: StarJob, fit: CBVFit | EnsembleFit | Unfitted) -> CorrectionResult:
    """Write one corrected light curve; its result."""
    task, index = job.task, job.rows
    dilution = 1.0 - task.contamination if 0 <= task.contamination < 1 else 1.0
    ppm, ppm_err = corrected_ppm(job.flux[index], fit.model[index], job.flux_err[index])
    ppm, ppm_err = ppm / dilution, ppm_err / dilution
    clipped = getattr(fit, "clipped", None)
    flagged = np.zeros(index.size, dtype=bool) if clipped is None else isolated(clipped)[index]
    good = job.good[index] & np.isfinite(ppm) & ~flagged
    ppm, jumps = _jumps(job, ppm, good)
    quality = np.where(flagged, QUALITY_SIGMA_CLIP, 0).astype(np.int32)
    quality |= jump_quality(index.size, jumps)
    cards = _cards(task, fit, dilution) + _source_cards(job.cbvs)
    cards.append(("CORRJUMP", len(jumps), "jumps corrected in FLUX_CORR"))
    set_corrected_flux(
        stored_lightcurve(task.lightcurve, *job.folders),
        ppm,
        ppm_err,
        quality=quality,
        clear=QUALITY_CORRECTIONS,
        cards=cards,
        compresslevel=job.settings.gzip_level,
    )
    values = ppm[good] / PPM
    corrected = fit.method != "none"
    return CorrectionResult(
        priority=task.priority,
        status=STATUS.OK if corrected else STATUS.WARNING,
        lightcurve=task.lightcurve,
        variance=float(np.var(values, ddof=1)) if values.size > 1 else None,
        rms_hour=_finite(rms_timescale(job.time[index][good], values)),
        ptp=_finite(ptp(values)),
        method=fit.method,
        cbv_num=getattr(fit, "n_vectors", None),
        noise_added=_finite(fit.noise_added),
        variability_removed=_finite(getattr(fit, "variability_removed", math.nan)),
        errors=[] if corrected or not fit.reason else [f"WARNING: not corrected: {fit.reason}"],
    )


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def error_result(task: CorrectionTask, message: str) -> CorrectionResult:
    """The ERROR result of a light curve that could not be corrected."""
    return CorrectionResult(
        priority=task.priority,
        status=STATUS.ERROR,
        lightcurve=task.lightcurve,
        errors=[f"ERROR: {message}"],
    )
