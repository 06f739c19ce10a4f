"""``tessphot correct``: the corrections of a run's light curves (``FLUX_CORR``).

For every group of light curves of one sector, camera, CCD, cadence and CBV area
(todo's ``cbv_area``; with the ensemble corrector, of the whole CCD) that holds a selected,
not yet corrected light curve:

1. all the group's raw light curves are read onto one grid of cadences
   (:mod:`tessphot.correct.lightcurves`);
2. **cbv** (default): its cotrending basis vectors are built from them
   (:func:`~tessphot.correct.cbv.build_cbvs`) and saved, with a plot, under
   ``<output>/cbv/`` (an existing file is used again, so that a resumed run corrects with
   the same vectors); every light curve is fitted by least squares, whose coefficients make
   each target's prior from its neighbours (:class:`~tessphot.correct.prior.NeighbourPriors`),
   and each selected one is fitted with its prior (:func:`~tessphot.correct.fit.fit_cbvs`);
   **ensemble**: each selected light curve is divided by the weighted mean of its quiet
   neighbours (:func:`~tessphot.correct.ensemble.fit_ensemble`);
3. (:mod:`tessphot.correct.star`, one job per light curve, here or in workers)
   ``FLUX_CORR`` = ``1e6 (flux / model - 1) / (1 - contamination)`` [ppm]: relative to the
   model and in the target's own light (the neighbours' mean light in the aperture, the
   photometry's ``contamination``, removed), ``FLUX_CORR_ERR`` likewise; the corrector and
   its parameters go into the primary header, and the isolated cadences the fit clipped as
   outliers into ``QUALITY`` (bit 4, TASOC's SigmaClip; runs of clipped cadences, e.g. a
   transit or a flare, are corrected and not flagged). Jumps the corrector left (persistent
   steps, :mod:`tessphot.correct.jumps`, ``[correct.jumps]``) are removed from
   ``FLUX_CORR``, the cadences at each flagged in ``QUALITY`` (bit 8, TASOC's
   JumpAdditiveConstant) and their number written as ``CORRJUMP``. The file is rewritten
   atomically and the result committed to ``diagnostics_corr`` at once, so a killed run
   redoes nothing it saved.

A group of fewer than :data:`MIN_GROUP_STARS` light curves (a star on its own, e.g. a
user's cutout) has no vectors and no neighbours: each light curve's ``FLUX_CORR`` is its
relative raw flux (method ``none``), a WARNING saying why; its jumps are found and
corrected all the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
from collections import defaultdict
from collections.abc import Iterator, Mapping
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    ProcessPoolExecutor,
    as_completed,
    wait,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tessphot.config.correct import CorrectSettings
from tessphot.correct.cbv import CBVSet, build_cbvs
from tessphot.correct.cbv_file import plot_cbvs, read_cbv, write_cbv
from tessphot.correct.external import external_cbvs, resample
from tessphot.correct.fit import fit_cbvs
from tessphot.correct.lightcurves import GroupData, align, read_raw
from tessphot.correct.prior import NeighbourPriors
from tessphot.correct.star import StarJob, correct_star, error_result
from tessphot.correct.store import (
    CorrectionResult,
    CorrectionTask,
    group_key,
    lightcurve_tasks,
    open_corrections,
    save_results,
    status_counts,
)
from tessphot.io.errors import FileProblem
from tessphot.paths import output_folder as default_output_folder
from tessphot.paths import stored_lightcurve
from tessphot.tasks import STATUS

logger = logging.getLogger(__name__)

#: Folder of the CBV files in the output folder.
CBV_FOLDER = "cbv"
#: Fewest light curves a group needs for CBVs of its own.
MIN_GROUP_STARS = 5
#: Fewest other light curves for a prior from the neighbours (else least squares).
MIN_PRIOR_STARS = 3
#: Light curves handed to the workers at a time (bounds the memory of what waits).
IN_FLIGHT = 64
#: The task list in the input folder.
TODO_FILE = "todo.sqlite"
#: Start method of worker processes (``-j``): as the photometry's.
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


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
    executor: Executor | None = None,
    workers: int | None = None,
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
    executor : concurrent.futures.Executor, optional
        Fits and writes the light curves (e.g. an MPI executor); this process builds the
        CBVs and saves the results.
    workers : int, optional
        Without an executor: fit and write in this many processes (default: in this one).

    Returns
    -------
    CorrectionReport

    Raises
    ------
    tessphot.tasks.schema.TodoFileError
        When the todo file is missing, has no photometry results or is in use.
    """
    input_folder = Path(input_folder)
    folders = (input_folder, default_output_folder(input_folder, output))
    if not isinstance(settings, CorrectSettings):
        settings = CorrectSettings.from_mapping(settings)
    report = CorrectionReport()
    with contextlib.ExitStack() as stack:
        conn = stack.enter_context(open_corrections(folders[0] / TODO_FILE, overwrite=overwrite))
        if executor is None and workers is not None and workers > 1:
            context = multiprocessing.get_context(START_METHOD)
            executor = stack.enter_context(
                ProcessPoolExecutor(max_workers=workers, mp_context=context)
            )
        for key, tasks in _groups(lightcurve_tasks(conn, constraints, by_area=False), settings):
            if not any(t.to_do for t in tasks):
                continue
            for result in _correct_group(
                key, tasks, folders, settings, overwrite, report, executor
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


def _groups(tasks: list[CorrectionTask], settings: CorrectSettings):
    """The groups corrected together: ``(key, tasks)``.

    The ensemble corrector's groups are whole CCDs (per cadence); the CBVs' are CBV areas,
    but an area with fewer light curves than ``[correct.cbv] min_stars`` takes its vectors
    and priors from its whole CCD (its other light curves only read, not corrected).
    """
    ccds: dict[tuple[int, ...], list[CorrectionTask]] = defaultdict(list)
    for task in tasks:
        ccds[group_key(task, by_area=False)].append(task)
    for ccd, members in ccds.items():
        if settings.method == "ensemble":
            yield ccd, members
            continue
        areas: dict[tuple[int, ...], list[CorrectionTask]] = defaultdict(list)
        for task in members:
            areas[group_key(task)].append(task)
        for key, area in areas.items():
            if len(area) < settings.cbv.min_stars and len(members) > len(area):
                logger.info(
                    "CBV area %d: %d light curves, fewer than %d: its vectors are made from "
                    "the whole CCD's %d",
                    key[4],
                    len(area),
                    settings.cbv.min_stars,
                    len(members),
                )
                others = [dataclasses.replace(t, to_do=False) for t in members if t not in area]
                area = area + others
            yield key, area


def _correct_group(key, tasks, folders, settings, overwrite, report, executor):
    """Correct the selected light curves of one group: yields each result when it is done."""
    label = "sector {} camera {} CCD {} cadence {} s".format(*key[:4])
    if key[4]:
        label += f" CBV area {key[4]}"
    readable, curves = [], []
    for task in tasks:
        try:
            curves.append(read_raw(stored_lightcurve(task.lightcurve, *folders)))
            readable.append(task)
        except FileProblem as err:
            logger.error("%s", err)
            if task.to_do:
                yield error_result(task, str(err))
    data = align(curves) if readable else None
    external = settings.method == "cbv" and bool(settings.cbv_file) and bool(readable)
    if len(readable) < MIN_GROUP_STARS and not external:
        # A star on its own (e.g. a user's cutout): no vectors, no neighbours. Its FLUX_CORR
        # is its relative raw flux, and the WARNING says why.
        reason = (
            f"{label}: {len(readable)} light curve(s), at least {MIN_GROUP_STARS} needed for "
            "a correction"
        )
        jobs = (
            _job(task, k, data, folders, settings, unfitted=reason)
            for k, task in enumerate(readable)
            if task.to_do
        )
        yield from map(correct_star, jobs)
        return
    if settings.method == "ensemble":
        logger.info("%s: %d light curves, ensemble corrector", label, len(readable))
        jobs = _ensemble_jobs(readable, data, folders, settings)
    else:
        if external:
            try:
                found = external_cbvs(settings.cbv_file, key[1], key[2], key[4])
            except FileProblem as err:
                logger.error("%s", err)
                yield from (error_result(task, str(err)) for task in readable if task.to_do)
                return
            cbvs = resample(found, data.time, data.cadenceno, key[3])
        else:
            cbvs = _group_cbvs(cbv_path(folders[1], key), data, key, settings, overwrite, report)
        logger.info(
            "%s: %d light curves, %d CBVs and %d spike vectors",
            label,
            len(readable),
            cbvs.n_vectors,
            cbvs.n_spikes,
        )
        jobs = _cbv_jobs(readable, data, cbvs, folders, settings)
    if executor is None:
        yield from map(correct_star, jobs)
    else:
        yield from _bounded_map(executor, correct_star, jobs)


def _job(task, k, data: GroupData, folders, settings, **corrector) -> StarJob:
    """The job of light curve ``k`` of a group."""
    return StarJob(
        task=task,
        folders=folders,
        flux=data.flux[k],
        flux_err=data.flux_err[k],
        rows=data.rows[k],
        good=data.good,
        time=data.time,
        settings=settings,
        dumps=data.dumps,
        **corrector,
    )


def _cbv_jobs(readable, data: GroupData, cbvs: CBVSet, folders, settings) -> Iterator[StarJob]:
    """The cbv jobs of the group's light curves to correct, each with its prior."""
    # Every light curve fitted by least squares: the coefficients the priors are made of.
    coefficients = np.array(
        [
            fit_cbvs(data.flux[k], cbvs, good=data.good, settings=settings.fit).ls_coefficients
            for k in range(len(readable))
        ]
    ).reshape(len(readable), cbvs.n_vectors)
    priors = None
    if cbvs.n_vectors:
        priors = NeighbourPriors(
            np.array([t.row for t in readable]),
            np.array([t.column for t in readable]),
            np.array([t.tmag for t in readable]),
            coefficients,
            settings=settings.fit,
        )
    for k, task in enumerate(readable):
        if task.to_do:
            prior = None
            if priors is not None and len(readable) > MIN_PRIOR_STARS:
                prior = priors.prior(task.row, task.column, task.tmag, exclude=k)
            yield _job(task, k, data, folders, settings, cbvs=cbvs, prior=prior)


def _ensemble_jobs(readable, data: GroupData, folders, settings) -> Iterator[StarJob]:
    """The ensemble jobs of the group's light curves to correct, with their candidates."""
    rows = np.array([t.row for t in readable])
    cols = np.array([t.column for t in readable])
    starids = np.array([t.starid for t in readable])
    for k, task in enumerate(readable):
        if not task.to_do:
            continue
        distance = np.hypot(rows - task.row, cols - task.column)
        order = np.argsort(distance, kind="stable")  # unknown positions (NaN) last
        near = order[order != k][: settings.ensemble.candidates]
        yield _job(
            task,
            k,
            data,
            folders,
            settings,
            others=data.flux[near],
            distances=distance[near],
            starids=starids[near],
        )


def _bounded_map(executor: Executor, function, jobs) -> Iterator[CorrectionResult]:
    """Results of ``function`` over ``jobs``, at most :data:`IN_FLIGHT` jobs submitted."""
    pending: set = set()
    for job in jobs:
        pending.add(executor.submit(function, job))
        if len(pending) >= IN_FLIGHT:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (future.result() for future in done)
    for future in as_completed(pending):
        yield future.result()


def _group_cbvs(path, data: GroupData, key, settings, overwrite, report) -> CBVSet:
    """The group's CBVs: from its file, else built and saved (with their plot)."""
    if path.exists() and not overwrite:
        try:
            cbvs = read_cbv(path)
            if np.array_equal(cbvs.cadenceno, data.cadenceno):
                return cbvs
            logger.warning("%s: other cadences than the light curves: built again", path)
        except (OSError, KeyError, ValueError) as err:
            logger.warning("%s: cannot be read (%s): built again", path, err)
    sector, camera, ccd, cadence, area = key
    cbvs = build_cbvs(
        data.flux,
        good=data.good,
        cadenceno=data.cadenceno,
        time=data.time,
        dumps=data.dumps,
        settings=settings.cbv,
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
