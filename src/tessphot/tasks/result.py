"""The result of one task, from the photometry to the task manager: :class:`TaskResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tessphot.tasks.status import STATUS

#: Error text recording an automatic switch of method (the original's, for Halo photometry).
SWITCH_TEXT = "Automatically switched to {} photometry"
HALO_SWITCH_TEXT = SWITCH_TEXT.format("Halo")
#: Error text recording the automatic choice's fall back from a PRF fit to aperture
#: photometry (the PRF does not describe the target).
FALLBACK_TEXT = "Fell back to aperture photometry"


@dataclass
class TaskResult:
    """The result of one task.

    Attributes
    ----------
    priority : int
        The task's priority (its key in the todo list).
    status : STATUS or int
        The task's status (anything but a final status is stored as ERROR).
    method_used : str, optional
        The method that made the light curve (default: the task's method).
    elaptime : float, optional
        Seconds spent on the task.
    worker_wait_time : float, optional
        Seconds the worker waited for the task (parallel runs).
    details : dict
        The diagnostics: any of ``filepath_lightcurve``, ``mean_flux``, ``variance``,
        ``variability``, ``rms_hour``, ``ptp``, ``pos_row``, ``pos_column``,
        ``contamination``, ``mask_size``, ``edge_flux``, ``stamp`` (``(row_min, row_max,
        col_min, col_max)``), ``stamp_resizes``, ``prf_chi2`` (the reduced chi-square of
        a PRF fit, :mod:`tessphot.photometry.goodness`), ``errors`` (list of messages) and
        ``skip_targets`` (TIC numbers of the other stars in the target's mask).
    task : dict
        The task's fields (``starid``, ``tmag``, ...).
    """

    priority: int
    status: STATUS | int
    method_used: str | None = None
    elaptime: float | None = None
    worker_wait_time: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        """The warnings and errors of the task (``"LEVEL: message"``)."""
        return list(self.details.get("errors") or [])
