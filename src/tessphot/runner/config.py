"""What a worker needs to run a task besides the task itself: :class:`TaskConfig`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tessphot.config.photometry import PhotometrySettings, photometry_settings
from tessphot.config.timing import TimingSettings
from tessphot.photometry.task import photometry_task
from tessphot.tasks import STATUS
from tessphot.tasks.result import TaskResult


@dataclass(frozen=True)
class TaskConfig:
    """Everything a worker needs besides the task itself.

    Picklable: it is sent to worker processes and MPI ranks.
    """

    #: Folder with the prepared data and catalogs.
    input_folder: Path
    #: Root of the light-curve folders.
    output_folder: Path
    #: Method forced for every task (None: the task's own, else automatic).
    method: str | None = None
    #: Write the diagnostic plots.
    plot: bool = False
    #: Processing version of the output.
    version: int = 1
    #: The ``[photometry]`` settings (a mapping is checked once, here).
    settings: PhotometrySettings | Mapping[str, Any] | None = None
    #: The ``[timing]`` settings (a mapping is checked once, here).
    timing: TimingSettings | Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        """Check the settings once for all tasks (not once per task).

        Raises
        ------
        tessphot.config.fields.SettingsError
            For an unknown key or an invalid value.
        """
        object.__setattr__(self, "settings", photometry_settings(self.settings))
        object.__setattr__(self, "timing", TimingSettings.from_mapping(self.timing))

    def run(self, task: Mapping[str, Any]) -> TaskResult:
        """The result of one task (:func:`photometry_task`)."""
        return photometry_task(
            task,
            self.input_folder,
            self.output_folder,
            method=self.method,
            plot=self.plot,
            version=self.version,
            settings=self.settings,
            timing=self.timing,
        )

    def failed_result(
        self, task: Mapping[str, Any], status: STATUS, error: str, elapsed: float = 0.0
    ) -> TaskResult:
        """The result of a task that did not finish (interrupted, or its worker died)."""
        return TaskResult(
            priority=int(task["priority"]),
            status=status,
            method_used=self.method or task.get("method") or "aperture",
            elaptime=elapsed,
            details={"errors": [error]},
            task=dict(task),
        )
