"""Where a target's light curve goes, and writing a method's result there."""

from __future__ import annotations

import os
from pathlib import Path

from tessphot.lightcurve import lightcurve_path, write_lightcurve
from tessphot.photometry.result import MethodResult
from tessphot.photometry.target import Target
from tessphot.tasks.status import HAS_LIGHTCURVE


def output_path(target: Target, output_folder: str | os.PathLike, version: int) -> Path:
    """Where the light curve of a target goes (§4.1 of the notes)."""
    d = target.source
    return lightcurve_path(
        output_folder,
        target.starid,
        d.sector,
        d.camera,
        d.ccd,
        int(round(d.cadence)),
        d.data_rel,
        version,
    )


def plot_folder(target: Target, output_folder: str | os.PathLike, version: int) -> Path:
    """The original's plot folder: ``<lc folder>/plots/<TIC:011d>``."""
    return output_path(target, output_folder, version).parent / "plots" / f"{target.starid:011d}"


def save_lightcurve(
    result: MethodResult,
    target: Target,
    *,
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    version: int,
    compresslevel: int | None,
) -> tuple[Path, str]:
    """Write a result's light curve (TASOC format, atomically).

    Returns
    -------
    path : Path
        The file written.
    stored : str
        Its path as the task list stores it: relative to the input folder when the output
        is inside it, else to the output folder.

    Raises
    ------
    ValueError
        When the result has no light curve.
    """
    if result.status not in HAS_LIGHTCURVE or result.columns is None or result.images is None:
        raise ValueError(f"TIC {target.starid}: no light curve to save (status {result.status})")
    source = target.source
    path = write_lightcurve(
        output_path(target, output_folder, version),
        result.columns,
        result.images,
        target=target.info,
        observation=source.observation,
        method=result.method,
        version=version,
        header_cards={**result.header_cards, **source.time_keywords()},
        settings=result.settings,
        compresslevel=compresslevel,
    )
    out = Path(output_folder).resolve()
    inp = Path(input_folder).resolve()
    base = inp if out == inp or inp in out.parents else out
    return path, os.path.relpath(path.resolve(), base)
