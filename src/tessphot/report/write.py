"""The precision report of a run: ``report.html`` with its PNG figures and ``report.json``.

The report folder (``<output>/report`` by default) is self-contained: the page refers to its
figures by relative paths, so it can be copied and viewed offline.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tessphot.paths import atomic_path
from tessphot.report.data import REFERENCE_BACKGROUND, RunTable, noise_ratios, read_run
from tessphot.report.figures import (
    aperture_figure,
    map_figure,
    noise_figure,
    prf_chi2_figure,
    time_figure,
)
from tessphot.report.summary import group_keys, group_name, group_summary
from tessphot.report.validation import (
    VALIDATED_STATUSES,
    dataval_flags,
    store_flags,
    update_headers,
)
from tessphot.tasks.schema import TODO_FILENAME
from tessphot.version import __version__

logger = logging.getLogger(__name__)

#: Name of the report folder in the output folder.
REPORT_FOLDER = "report"
#: Folder of the figures inside the report folder.
FIGURE_FOLDER = "figures"


@dataclass
class Report:
    """Where a report went and what it says."""

    #: The HTML page.
    html: Path
    #: The numbers.
    json: Path
    #: The numbers as written to ``report.json``.
    numbers: dict[str, Any]
    #: Light curves whose ``DATAVAL`` card was rewritten.
    headers_updated: int = 0


def write_report(
    input_folder: str | Path,
    output_folder: str | Path,
    *,
    report_folder: str | Path | None = None,
    validate: bool = True,
) -> Report:
    """Validate the stars of a run and write its precision report.

    Parameters
    ----------
    input_folder : str or pathlib.Path
        The folder of ``todo.sqlite``.
    output_folder : str or pathlib.Path
        The light-curve folder of the run.
    report_folder : str or pathlib.Path, optional
        Where to write the report (default ``<output_folder>/report``).
    validate : bool
        Store the validation flags in ``todo.sqlite`` and the light curves' headers.

    Returns
    -------
    Report

    Raises
    ------
    FileNotFoundError
        When there is no todo list.
    """
    input_folder, output_folder = Path(input_folder), Path(output_folder)
    todo = input_folder / TODO_FILENAME
    if not todo.is_file():
        raise FileNotFoundError(f"{todo}: no todo list (run 'tessphot todo' first)")
    folder = Path(report_folder) if report_folder is not None else output_folder / REPORT_FOLDER
    run = read_run(todo)
    flags = dataval_flags(run)
    updated = 0
    if validate:
        store_flags(todo, run, flags)
        updated = update_headers(run, flags, (input_folder, output_folder))
    rms, ptp = noise_ratios(run)
    groups = []
    for key in group_keys(run):
        rows = (
            (run["sector"] == key[0])
            & (run["camera"] == key[1])
            & (run["ccd"] == key[2])
            & (run["cadence"] == key[3])
        )
        numbers = group_summary(run.subset(rows), rms[rows], ptp[rows], flags[rows])
        shown = rows & np.isin(run["status"], VALIDATED_STATUSES)
        numbers["figures"] = _figures(run.subset(shown), rms[shown], key, folder)
        groups.append({"sector": key[0], "camera": key[1], "ccd": key[2], "cadence": key[3]})
        groups[-1].update(numbers)
    numbers = {
        "tessphot_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "todo": str(todo.resolve()),
        "output": str(output_folder.resolve()),
        "noise_model": {"background_e_per_s_per_pixel": REFERENCE_BACKGROUND},
        "tasks": len(run),
        "groups": groups,
    }
    json_path = folder / "report.json"
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(numbers, indent=1) + "\n")
    html_path = folder / "report.html"
    with atomic_path(html_path) as tmp:
        tmp.write_text(_page(numbers))
    return Report(html_path, json_path, numbers, updated)


def _figures(run: RunTable, rms: np.ndarray, key: tuple, folder: Path) -> dict[str, str]:
    """Draw a group's figures; their paths relative to the report folder."""
    name = group_name(key)
    paths = {
        "noise": noise_figure(run, key[3], folder / FIGURE_FOLDER / f"{name}_noise.png"),
        "aperture": aperture_figure(run, folder / FIGURE_FOLDER / f"{name}_aperture.png"),
        "ccd_map": map_figure(run, rms, folder / FIGURE_FOLDER / f"{name}_map.png"),
        "time": time_figure(run, folder / FIGURE_FOLDER / f"{name}_time.png"),
    }
    if np.isfinite(run["prf_chi2"]).any():
        paths["prf_chi2"] = prf_chi2_figure(run, folder / FIGURE_FOLDER / f"{name}_prf_chi2.png")
    return {subject: path.relative_to(folder).as_posix() for subject, path in paths.items()}


def _table(rows: dict[str, Any], head: tuple[str, str]) -> str:
    """An HTML table of a mapping."""
    cells = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table><tr><th>{head[0]}</th><th>{head[1]}</th></tr>{cells}</table>"


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)


def _noise_table(bins: list[dict]) -> str:
    """The per-magnitude noise table of a group."""
    keys = list(bins[0]) if bins else []
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(b[k])}</td>" for k in keys) + "</tr>" for b in bins)
    return f"<table><tr>{head}</tr>{body}</table>"


def _section(group: dict[str, Any]) -> str:
    """The HTML section of one group."""
    title = (
        f"Sector {group['sector']}, camera {group['camera']}, CCD {group['ccd']}, "
        f"{group['cadence']} s cadence: {group['tasks']} tasks"
    )
    validation = group["validation"]
    parts = [
        f"<h2>{html.escape(title)}</h2>",
        "<h3>Statuses</h3>",
        _table(group["statuses"], ("status", "tasks")),
        "<h3>Methods</h3>",
        _table(group["methods"]["used"], ("method used", "tasks")),
        _table(group["methods"]["switches"], ("switch", "tasks")),
        _table(group["methods"]["switch_reasons"], ("reason of the switch", "tasks")),
        _table(group["methods"]["prf_fits"], ("PRF fits: reduced chi-square", "")),
        _table(group["errors"], ("error", "tasks")),
        "<h3>Data validation</h3>",
        f"<p>{validation['approved']} of {validation['validated']} light curves approved.</p>",
        _table(validation["flags"], ("flag", "stars")),
        "<h3>Corrections</h3>",
        _table(group["corrections"], ("correction status or corrector", "light curves")),
        "<h3>Noise against Tmag</h3>",
        _noise_table(group["noise"]),
        f"<p>Computing time: {_fmt(group['time']['total_s'])} s in all, median "
        f"{_fmt(group['time']['median_per_star_s'])} s per star.</p>",
    ]
    parts += [
        f'<figure><img src="{html.escape(path)}" alt="{subject}"><figcaption>{subject}'
        "</figcaption></figure>"
        for subject, path in group["figures"].items()
    ]
    return "\n".join(parts)


def _page(numbers: dict[str, Any]) -> str:
    """The whole HTML page."""
    sections = "\n".join(_section(group) for group in numbers["groups"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tessphot precision report</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}
table{{border-collapse:collapse;margin:0.5em 0}}td,th{{border:1px solid #ccc;padding:2px 6px}}
img{{max-width:100%}}</style></head><body>
<h1>tessphot precision report</h1>
<p>{numbers["tasks"]} tasks of {html.escape(numbers["todo"])}; light curves in
{html.escape(numbers["output"])}; tessphot {html.escape(numbers["tessphot_version"])},
{html.escape(numbers["created"])}. Noise model: noise-model.md (shot, sky at
{numbers["noise_model"]["background_e_per_s_per_pixel"]:g} e-/s per pixel, read noise,
60 ppm per sqrt(hour)) for the star's own mask.</p>
{sections}
</body></html>
"""


def write_report_or_warn(input_folder: str | Path, output_folder: str | Path) -> Path | None:
    """:func:`write_report` at the end of a run: a failure is one WARNING line, not the run's.

    Returns
    -------
    pathlib.Path or None
        The HTML page, or None when the report could not be written.
    """
    try:
        return write_report(input_folder, output_folder).html
    except Exception as err:  # the light curves are done: a report problem must not fail them
        logger.warning("No precision report: %s: %s", type(err).__name__, err)
        return None
