"""One photometry task: the original's ``tessphot()`` dispatcher.

:func:`photometry_task` picks the method, runs it, writes the light curve (and plots), and
turns every failure into an ``ERROR`` result with a clear message instead of an exception,
so that a run goes on with the next task.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tessphot.config.photometry import PhotometrySettings, photometry_settings
from tessphot.io.errors import TessphotError
from tessphot.photometry.aperture import AperturePhotometry
from tessphot.photometry.capture import capture_warnings
from tessphot.photometry.halo import HaloPhotometry
from tessphot.photometry.linpsf import LinPSFPhotometry
from tessphot.photometry.method import PhotometryMethod
from tessphot.photometry.output import plot_folder, save_lightcurve
from tessphot.photometry.psf import PSFPhotometry
from tessphot.photometry.result import MethodResult, SpilledError
from tessphot.photometry.target import Target, open_target
from tessphot.tasks import FALLBACK_TEXT, STATUS, SWITCH_TEXT, TaskResult
from tessphot.tasks.status import HAS_LIGHTCURVE

logger = logging.getLogger(__name__)

#: The methods by the names the todo list or the command line may give.
METHODS: dict[str, type[PhotometryMethod]] = {
    "aperture": AperturePhotometry,
    "psf": PSFPhotometry,
    "linpsf": LinPSFPhotometry,
    "halo": HaloPhotometry,
}
#: Methods the todo list or the command line may name.
KNOWN_METHODS = tuple(METHODS)
#: Method recorded for a task that failed before any method ran.
METHOD_ERROR = "error"
#: The names in the logged switch of the methods the automatic choice can switch to when a
#: bright target spills off the data (:data:`tessphot.config.photometry.SPILL_METHODS`).
SPILL_METHOD_NAMES = {"linpsf": "linear PSF", "halo": "Halo"}


class _SpillError(Exception):
    """The automatic choice's aperture photometry of a bright target spilled.

    It spilled off the stamp or the data: switch to the ``choice.spill_method``.
    """

    def __init__(self, reason: str, prf_trusted: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        #: Whether the PRF can carry a fit of the target's wings.
        self.prf_trusted = prf_trusted


def method_class(method: str) -> type[PhotometryMethod]:
    """The class of a method by its name.

    Raises
    ------
    TessphotError
        For an unknown method.
    """
    if method not in METHODS:
        raise TessphotError(
            f"unknown photometry method {method!r} (one of {', '.join(KNOWN_METHODS)})"
        )
    return METHODS[method]


@dataclass
class _MethodRun:
    """A method run on a task's target, its light curve not yet written."""

    phot: PhotometryMethod
    target: Target
    result: MethodResult


def _run_method(
    method: str,
    task: Mapping[str, Any],
    *,
    input_folder: str | os.PathLike,
    settings: Mapping[str, Any] | PhotometrySettings | None,
    timing: Mapping[str, Any] | None,
    automatic: bool = False,
    switch_reason: str | None = None,
) -> _MethodRun:
    """Run one method on a task.

    Parameters
    ----------
    method : str
    task : mapping
    input_folder, settings, timing
        As :func:`photometry_task`.
    automatic : bool
        The method was chosen automatically: a bright target whose aperture spills off the
        stamp or the data (the result's ``spill_reason``) raises :class:`_SpillError`
        instead of giving a result.
    switch_reason : str, optional
        Why the automatic choice switched method (into its header).
    """
    cls = method_class(method)
    target = open_target(
        task["starid"],
        input_folder,
        task["sector"],
        task["camera"],
        task["ccd"],
        cadence=task.get("cadence"),
        datasource=task.get("datasource") or "ffi",
        settings=settings,
        timing=timing,
        target_limit=task.get("target_limit"),
    )
    phot = cls(target, settings, switch_reason=switch_reason)
    spills = automatic and target.tmag <= phot.settings.choice.spill_tmag
    try:
        result = phot.run()
    except SpilledError as err:
        if spills:
            raise _SpillError(err.spill_reason, target.prf_trusted) from None
        raise
    if spills and result.spill_reason:
        raise _SpillError(result.spill_reason, target.prf_trusted)
    return _MethodRun(phot, target, result)


def _save_run(
    run: _MethodRun,
    *,
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    plot: bool,
    version: int,
) -> tuple[STATUS, dict[str, Any]]:
    """Write a method's light curve (and plots); its status and diagnostics."""
    result, target = run.result, run.target
    details = {
        **result.diagnostics,
        "contamination": result.contamination,
        "skip_targets": list(result.skip_targets),
    }
    if result.status in HAS_LIGHTCURVE:
        _, details["filepath_lightcurve"] = save_lightcurve(
            result,
            target,
            input_folder=input_folder,
            output_folder=output_folder,
            version=version,
            compresslevel=run.phot.settings.gzip_level,
        )
        if plot:
            from tessphot.photometry.plots import plot_photometry

            folder = plot_folder(target, output_folder, version)
            plot_photometry(run.phot, result, folder / f"{target.starid:011d}-{result.method}.png")
    return result.status, details


def _switch_method(settings: Mapping[str, Any] | None, starid: Any, spill: _SpillError) -> str:
    """The method the automatic choice switches to for a spilling target (logged)."""
    chosen = photometry_settings(settings).choice.spill_method
    if chosen == "linpsf" and not spill.prf_trusted:
        logger.info(
            "TIC %s: no SPOC PRF for a fit of the wings: halo photometry instead",
            starid,
        )
        chosen = "halo"
    text = SWITCH_TEXT.format(SPILL_METHOD_NAMES[chosen])
    logger.warning("TIC %s: %s (%s)", starid, text, spill.reason)
    return chosen


def _prf_fallback(
    run: _MethodRun,
    task: Mapping[str, Any],
    spill: _SpillError,
    *,
    input_folder: str | os.PathLike,
    settings: Mapping[str, Any] | PhotometrySettings | None,
    timing: Mapping[str, Any] | None,
) -> _MethodRun:
    """The automatic choice's PRF fit, or aperture photometry where the PRF fails the target.

    When the fit's reduced chi-square (``PRFCHI2``) exceeds ``choice.prf_chi2_max``, the
    PRF does not describe the target: the aperture photometry the automatic choice had
    switched away from, kept with its spill (status WARNING: the light off the data is lost,
    in amounts that change with the pointing), its header saying why (``AP_WHY``) and
    carrying the rejected fit's ``PRFCHI2`` cards. Not the aperture with the spilling
    columns left out (``aperture.trim_spilling_columns``): what is left of a saturated star
    is its wings, whose light in a fixed aperture rests on the same PRF (on simulated stars
    with PRF differences it was 1.7-5 times noisier than the plain aperture), nor halo
    photometry (tens to hundreds of times its noise on saturated stars). Logged in one
    WARNING line. When the aperture fails too, the fit stands (WARNING).
    """
    result = run.result
    chosen = photometry_settings(settings)
    limit = chosen.choice.prf_chi2_max
    if result.status not in HAS_LIGHTCURVE or not result.prf_chi2 > limit:
        return run
    starid = task.get("starid")
    name = SPILL_METHOD_NAMES.get(result.method, result.method)
    why = f"{result.method} PRF chi2 {result.prf_chi2:.3g} > {limit:g}"
    logger.warning(
        "TIC %s: %s: the PRF does not describe the target (reduced chi-square %.3g of the "
        "%s fit > %g; %s)",
        starid,
        FALLBACK_TEXT,
        result.prf_chi2,
        name,
        limit,
        spill.reason,
    )
    try:
        fallback = _run_method(
            "aperture",
            task,
            input_folder=input_folder,
            settings=chosen,
            timing=timing,
            switch_reason=why,
        )
    except TessphotError as err:
        logger.warning(
            "TIC %s: aperture photometry failed (%s): the %s fit stands", starid, err, name
        )
        return run
    if run.phot.goodness is not None:
        fallback.result.header_cards.update(run.phot.goodness.header_cards())
    fallback.result.diagnostics["prf_chi2"] = result.prf_chi2
    return fallback


def photometry_task(
    task: Mapping[str, Any],
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    *,
    method: str | None = None,
    plot: bool = False,
    version: int = 1,
    settings: Mapping[str, Any] | None = None,
    timing: Mapping[str, Any] | None = None,
) -> TaskResult:
    """Run the photometry of one task and return its result for the task manager.

    Parameters
    ----------
    task : mapping
        A task of :meth:`tessphot.tasks.TaskManager.get_task` (``priority``, ``starid``,
        ``sector``, ``camera``, ``ccd``, ``cadence``, ``datasource``, ``method``; and
        ``target_limit``, the task list's faint limit, when it is known).
    input_folder, output_folder : path-like
    method : str, optional
        Force a method (else the task's, else automatic: aperture, switched to the
        ``choice.spill_method`` (linear PSF on the wings, or halo photometry) for targets of Tmag
        <= ``choice.spill_tmag`` whose aperture spills off the stamp or the data; the switch
        and its reason are logged into the errors and the reason into the header,
        ``PSF_WHY`` or ``HALO_WHY``; back to the aperture when the PRF fit's reduced
        chi-square exceeds ``choice.prf_chi2_max``, ``AP_WHY``: :func:`_prf_fallback`).
    plot : bool
        Write the diagnostic plots.
    version : int
        Processing version of the output.
    settings : mapping, optional
        The ``[photometry]`` settings.
    timing : mapping, optional
        The ``[timing]`` settings (:class:`tessphot.timing.TimingSettings`).

    Returns
    -------
    TaskResult
        Its ``details``: the diagnostics, ``errors``, ``skip_targets`` and
        ``filepath_lightcurve``.

    Notes
    -----
    Every exception but KeyboardInterrupt and SystemExit becomes an ERROR result; the
    warnings and errors logged during the task are its ``errors`` (``"LEVEL: message"``).
    """
    start = time.perf_counter()
    chosen = method or task.get("method") or "aperture"
    automatic = not (method or task.get("method"))
    errors: list[str] = []
    details: dict[str, Any] = {}
    status = STATUS.ERROR
    where = {"input_folder": input_folder, "settings": settings, "timing": timing}
    with capture_warnings(errors):
        try:
            try:
                run = _run_method(chosen, task, automatic=automatic, **where)
            except _SpillError as spill:
                chosen = _switch_method(settings, task.get("starid"), spill)
                run = _run_method(chosen, task, switch_reason=spill.reason, **where)
                run = _prf_fallback(run, task, spill, **where)
                chosen = run.result.method
            status, details = _save_run(
                run,
                input_folder=input_folder,
                output_folder=output_folder,
                plot=plot,
                version=version,
            )
        except TessphotError as err:
            status = STATUS.ERROR
            logger.error("%s", err)
        except Exception as err:  # a bug: say what and where, go on with the next task
            status = STATUS.ERROR
            logger.error("TIC %s: %s: %s", task.get("starid"), type(err).__name__, err)
            logger.debug("Traceback:\n%s", traceback.format_exc())
    if status not in HAS_LIGHTCURVE:
        details.pop("skip_targets", None)
        details.pop("filepath_lightcurve", None)
    details["errors"] = list(dict.fromkeys(errors))
    return TaskResult(
        priority=int(task["priority"]),
        status=status,
        method_used=chosen if chosen in KNOWN_METHODS else METHOD_ERROR,
        elaptime=time.perf_counter() - start,
        details=details,
        task=dict(task),
    )
