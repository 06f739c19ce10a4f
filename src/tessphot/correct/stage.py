"""``tessphot correct``: the corrections of a run's light curves (``FLUX_CORR``).

For every group of light curves of one sector, camera, CCD, cadence and CBV area
(todo's ``cbv_area``) that holds a selected, not yet corrected light curve:

1. all the group's raw light curves are read onto one grid of cadences
   (:mod:`tessphot.correct.lightcurves`);
2. its cotrending basis vectors are built from them (:func:`~tessphot.correct.cbv.build_cbvs`)
   and saved, with a plot, under ``<output>/cbv/`` (an existing file is used again, so that a
   resumed run corrects with the same vectors);
3. every light curve is fitted by least squares, which gives the coefficients of the
   neighbours from which each target's prior is made
   (:func:`~tessphot.correct.fit.neighbour_prior`); each selected light curve is then fitted
   with its prior (:func:`~tessphot.correct.fit.fit_cbvs`);
4. ``FLUX_CORR`` = ``1e6 (flux / model - 1) / (1 - contamination)`` [ppm]: relative to the
   model and in the target's own light (the neighbours' mean light in the aperture, the
   photometry's ``contamination``, removed), with ``FLUX_CORR_ERR`` likewise; the
   corrector, its vectors and coefficients go into the primary header and the cadences the
   fit clipped into ``QUALITY`` (bit 4, TASOC's SigmaClip). The file is rewritten
   atomically and the result committed to ``diagnostics_corr`` at once, so a killed run
   redoes nothing it saved.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tessphot.config.correct import CorrectSettings
from tessphot.correct.cbv import CBVSet, build_cbvs
from tessphot.correct.cbv_file import plot_cbvs, read_cbv, write_cbv
from tessphot.correct.fit import CBVFit, fit_cbvs, neighbour_prior
from tessphot.correct.lightcurves import GroupData, align, read_raw
from tessphot.correct.store import (
    CorrectionResult,
    CorrectionTask,
    lightcurve_tasks,
    open_corrections,
    save_results,
    status_counts,
)
from tessphot.io.errors import FileProblem
from tessphot.lightcurve.diagnostics import ptp, rms_timescale
from tessphot.lightcurve.writer import set_corrected_flux
from tessphot.paths import output_folder as default_output_folder
from tessphot.paths import stored_lightcurve
from tessphot.tasks import STATUS
from tessphot.version import __version__

logger = logging.getLogger(__name__)

#: ``QUALITY`` bit of cadences the fit clipped as outliers (TASOC's ``SigmaClip``).
QUALITY_SIGMA_CLIP = 4
#: Relative flux to ppm.
PPM = 1e6
#: Folder of the CBV files in the output folder.
CBV_FOLDER = "cbv"
#: Fewest light curves a group needs for CBVs of its own.
MIN_GROUP_STARS = 5


@dataclass
class CorrectionReport:
    """What a run of the corrections did."""

    #: Light curves corrected in this run, per status name.
    counts: dict[str, int] = field(default_factory=dict)
    #: Status of every light curve of the todo file after the run (``TODO``: not yet).
    totals: dict[str, int] = field(default_factory=dict)
    #: CBV files written in this run.
    cbv_files: list[Path] = field(default_factory=list)
    #: Errors, one line each.
    errors: list[str] = field(default_factory=list)

    @property
    def corrected(self) -> int:
        """Light curves corrected in this run."""
        return sum(self.counts.values())


def cbv_path(folder: Path, key: tuple[int, int, int, int, int]) -> Path:
    """The CBV file of a group ``(sector, camera, ccd, cadence, cbv_area)``."""
    sector, _, _, cadence, area = key
    return folder / CBV_FOLDER / f"tessphot-s{sector:04d}-c{cadence:04d}-a{area:d}-cbv.fits"


def run_corrections(
    input_folder: str | Path,
    output: str | Path | None = None,
    *,
    constraints: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    settings: CorrectSettings | Mapping[str, Any] | None = None,
) -> CorrectionReport:
    """Correct the light curves of a run (see the module's description).

    Parameters
    ----------
    input_folder : path-like
        The folder with ``todo.sqlite`` of the photometry run.
    output : path-like, optional
        The light-curve folder (default that of the run: ``$TESSPHOT_OUTPUT`` or
        ``<input>/lightcurves``).
    constraints : mapping, optional
        Which light curves to correct (:func:`~tessphot.tasks.constraints.build_constraints`);
        their groups' other light curves are read for the vectors and priors.
    overwrite : bool
        Redo corrections already made, and build the CBVs again.
    settings : CorrectSettings or mapping, optional
        The ``[correct]`` settings.

    Returns
    -------
    CorrectionReport

    Raises
    ------
    tessphot.tasks.schema.TodoFileError
        When the todo file is missing, has no photometry results or is in use.
    """
    input_folder = Path(input_folder)
    folder = default_output_folder(input_folder, output)
    if not isinstance(settings, CorrectSettings):
        settings = CorrectSettings.from_mapping(settings)
    report = CorrectionReport()
    with open_corrections(input_folder / "todo.sqlite", overwrite=overwrite) as conn:
        groups: dict[tuple[int, ...], list[CorrectionTask]] = defaultdict(list)
        for task in lightcurve_tasks(conn, constraints):
            groups[(task.sector, task.camera, task.ccd, task.cadence, task.cbv_area)].append(task)
        for key, tasks in groups.items():
            if not any(t.to_do for t in tasks):
                continue
            for result in _correct_group(
                key, tasks, (input_folder, folder), settings, overwrite, report
            ):
                save_results(conn, [result])
                name = result.status.name
                report.counts[name] = report.counts.get(name, 0) + 1
                if result.status == STATUS.ERROR:
                    report.errors.append(
                        f"{result.lightcurve or result.priority}: {'; '.join(result.errors)}"
                    )
        report.totals = status_counts(conn)
    return report


def _correct_group(key, tasks, folders, settings, overwrite, report):
    """Correct the selected light curves of one group: yields each result once saved.

    ``folders``: the input and output folders.
    """
    input_folder, folder = folders
    label = "sector {} camera {} CCD {} cadence {} s CBV area {}".format(*key)
    readable: list[CorrectionTask] = []
    curves = []
    for task in tasks:
        try:
            curves.append(read_raw(stored_lightcurve(task.lightcurve, input_folder, folder)))
            readable.append(task)
        except FileProblem as err:
            logger.error("%s", err)
            if task.to_do:
                yield _error(task, str(err))
    if len(readable) < MIN_GROUP_STARS:
        for task in readable:
            if task.to_do:
                yield _error(
                    task,
                    f"{label}: {len(readable)} light curve(s), at least {MIN_GROUP_STARS} "
                    "needed for its CBVs",
                )
        return
    data = align(curves)
    path = cbv_path(folder, key)
    cbvs = _group_cbvs(path, data, key, settings, overwrite, report)
    logger.info(
        "%s: %d light curves, %d CBVs and %d spike vectors",
        label,
        len(readable),
        cbvs.vectors.shape[1],
        cbvs.spikes.shape[1],
    )
    # Every light curve fitted by least squares: the coefficients the priors are made of.
    first = [
        fit_cbvs(data.flux[k], cbvs, good=data.good, settings=settings)
        for k in range(len(readable))
    ]
    coefficients = np.array([fit.coefficients for fit in first])
    rows = np.array([t.row for t in readable])
    cols = np.array([t.column for t in readable])
    tmags = np.array([t.tmag for t in readable])
    for k, task in enumerate(readable):
        if not task.to_do:
            continue
        start = time.perf_counter()
        try:
            others = np.arange(len(readable)) != k
            prior = neighbour_prior(
                task.row,
                task.column,
                task.tmag,
                rows[others],
                cols[others],
                tmags[others],
                coefficients[others],
                settings=settings,
            )
            fit = fit_cbvs(data.flux[k], cbvs, good=data.good, prior=prior, settings=settings)
            result = _write(folders, task, data, k, fit, cbvs, settings)
        except (FileProblem, OSError, ValueError, np.linalg.LinAlgError) as err:
            logger.error("TIC %d (%s): %s", task.starid, task.lightcurve, err)
            result = _error(task, str(err))
        result.elaptime = time.perf_counter() - start
        yield result


def _group_cbvs(path, data: GroupData, key, settings, overwrite, report) -> CBVSet:
    """The group's CBVs: from its file, else built and saved (with their plot)."""
    if path.exists() and not overwrite:
        try:
            cbvs = read_cbv(path)
            if np.array_equal(cbvs.cadenceno, data.cadenceno):
                return cbvs
            logger.warning("%s: other cadences than the light curves: built again", path)
        except FileProblem as err:
            logger.warning("%s: built again", err)
    sector, camera, ccd, cadence, area = key
    cbvs = build_cbvs(
        data.flux,
        good=data.good,
        cadenceno=data.cadenceno,
        time=data.time,
        dumps=data.dumps,
        settings=settings,
        sector=sector,
        camera=camera,
        ccd=ccd,
        cadence=cadence,
        cbv_area=area,
    )
    write_cbv(path, cbvs)
    plot_cbvs(cbvs, path.with_suffix(".png"))
    report.cbv_files.append(path)
    return cbvs


def _write(folders, task, data, k, fit: CBVFit, cbvs: CBVSet, settings) -> CorrectionResult:
    """Write one corrected light curve; its result (``folders``: input and output)."""
    index = data.rows[k]
    flux = data.flux[k, index]
    flux_err = data.flux_err[k, index]
    model = fit.model[index]
    dilution = 1.0 - task.contamination if 0 <= task.contamination < 1 else 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = (flux / model - 1.0) / dilution
        relative_err = flux_err / model / dilution
    quality = np.where(fit.outliers[index], QUALITY_SIGMA_CLIP, 0).astype(np.int32)
    cards: list[tuple[str, Any, str]] = [
        ("CORRMET", "cbv", "corrector of FLUX_CORR"),
        ("CORRVER", __version__, "tessphot version of the corrections"),
        ("CBV_AREA", int(task.cbv_area), "CBV area (camera, CCD, ring)"),
        ("CBV_MET", fit.method, "CBV fit: map, ls or none (no correction)"),
        ("CBV_NUM", int(fit.n_vectors), "number of CBVs fitted"),
        ("CORRDCON", bool(dilution < 1.0), "FLUX_CORR in the target's own light"),
    ]
    cards += [
        (f"CBV_C{i}", float(c), f"coefficient of CBV {i}")
        for i, c in enumerate(fit.coefficients[: fit.n_vectors], start=1)
    ]
    set_corrected_flux(
        stored_lightcurve(task.lightcurve, *folders),
        PPM * relative,
        PPM * relative_err,
        quality=quality,
        cards=cards,
        compresslevel=settings.gzip_level,
    )
    good = data.good[index] & np.isfinite(relative) & (quality == 0)
    t = data.time[index][good]
    values = relative[good]
    return CorrectionResult(
        priority=task.priority,
        status=STATUS.OK if fit.method != "none" else STATUS.WARNING,
        lightcurve=task.lightcurve,
        variance=float(np.var(values, ddof=1)) if values.size > 1 else None,
        rms_hour=_finite(rms_timescale(t, values)),
        ptp=_finite(ptp(values)),
        method=fit.method,
        cbv_num=int(fit.n_vectors),
        noise_added=_finite(fit.noise_added),
        variability_removed=_finite(fit.variability_removed),
        errors=[f"WARNING: {fit.reason}"] if fit.method == "none" and fit.reason else [],
    )


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _error(task: CorrectionTask, message: str) -> CorrectionResult:
    return CorrectionResult(
        priority=task.priority,
        status=STATUS.ERROR,
        lightcurve=task.lightcurve,
        errors=[f"ERROR: {message}"],
    )
