"""The built-in demo's stages: a small simulated sector run through every stage that exists."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path

import h5py

from tessphot.catalog.make import catalog_path, make_catalogs
from tessphot.catalog.sources.file import FileSource
from tessphot.config import load_settings
from tessphot.config.simulate import SimulationConfig
from tessphot.correct.stage import run_corrections
from tessphot.demo.folder import DemoFolder
from tessphot.evaluation.scoring.corrected_report import corrections_report, format_corrections
from tessphot.evaluation.scoring.photometry import format_table, score_sector
from tessphot.evaluation.scoring.sector import score_sector_run
from tessphot.evaluation.simulate.sector import simulate_sector
from tessphot.io import find_ffis, read_ffi
from tessphot.paths import LIGHTCURVE_FOLDER, demo_folder
from tessphot.prepare.run import prepare_ccd
from tessphot.report import write_report_or_warn
from tessphot.runner import format_summary, run_photometry
from tessphot.tasks import STATUS
from tessphot.todo import make_todo

log = logging.getLogger(__name__)


def _demo_config(settings: dict, prf_dir: str | None):
    demo = settings["demo"]
    return SimulationConfig(
        sector=demo["sector"],
        camera=demo["camera"],
        ccd=demo["ccd"],
        size=demo["size"],
        cadences=demo["cadences"],
        stars=demo["stars"],
        bright=demo["bright"],
        seed=demo["seed"],
        prf_dir=prf_dir,
        demo_star=True,
        systematics=demo["systematics"],
    )


def ensure_demo_input(
    folder: str | os.PathLike | None = None,
    prf_dir: str | None = None,
    overwrite: bool = False,
    settings: dict | None = None,
    progress: bool = True,
) -> DemoFolder:
    """Simulate the demo data into ``folder`` unless the same data are already there.

    The folder must be new, empty or the demo's own (:class:`DemoFolder`). New data (other
    settings, or ``overwrite``) first remove everything the demo made there, and nothing else.

    Returns
    -------
    DemoFolder
        The demo folder.

    Raises
    ------
    DemoFolderError
        When the folder is not the demo's to use.
    """
    from dataclasses import asdict

    demo = DemoFolder.claim(folder if folder else demo_folder())
    config = _demo_config(settings or load_settings(), prf_dir)
    wanted = json.loads(json.dumps({k: v for k, v in asdict(config).items() if k != "extra_stars"}))
    if not overwrite and demo.simulation == wanted:
        log.info("Demo data already simulated in %s", demo.path)
        return demo
    # New data: everything the demo derived from its old data goes too.
    demo.remove_own()
    log.info("Simulating the demo sector into %s", demo.path)
    with demo.recording():
        simulate_sector(config, demo.path, progress=progress)
    demo.simulation = wanted
    demo.save()
    return demo


def prepare_simulated(
    folder: str | os.PathLike,
    settings: dict | None = None,
    prf_dir: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    workers: int | None = None,
) -> dict:
    """Run the catalog, prepare and todo stages on a simulated sector in ``folder``.

    The catalog comes from the simulator's TIC-like file (``truth/tic_*.csv``). Stages whose
    output exists are skipped unless ``overwrite``.

    Returns
    -------
    dict
        ``sector``, ``camera``, ``ccd``, the ``catalog``, ``prepared`` and ``todo`` paths
        and the list of ``ffis``.
    """
    folder = Path(folder)
    settings = settings or load_settings()
    ffis = find_ffis(folder)
    if not ffis:
        raise FileNotFoundError(f"no simulated FFIs in {folder}")
    first = read_ffi(ffis[0])
    sector, camera, ccd = first.sector, first.camera, first.ccd
    cat = catalog_path(folder, sector, camera, ccd)
    if overwrite or not cat.is_file():
        tic = sorted((folder / "truth").glob("tic_*.csv"))
        if not tic:
            raise FileNotFoundError(f"no simulated catalog (truth/tic_*.csv) in {folder}")
        make_catalogs(sector, folder, FileSource(tic), [camera], [ccd], overwrite=True)
    prepared = prepare_ccd(
        folder,
        sector,
        camera,
        ccd,
        settings=settings["prepare"],
        workers=workers if workers is not None else settings["prepare"].get("workers"),
        prf_dir=prf_dir,
        overwrite=overwrite,
        progress=progress,
    )
    todo = make_todo(
        folder, [sector], [camera], [ccd], overwrite=overwrite, settings=settings["todo"]
    )
    return {
        "sector": sector,
        "camera": camera,
        "ccd": ccd,
        "catalog": cat,
        "prepared": prepared,
        "todo": todo,
        "ffis": ffis,
    }


def ensure_demo_ready(
    folder: str | os.PathLike | None = None,
    prf_dir: str | None = None,
    overwrite: bool = False,
    settings: dict | None = None,
    progress: bool = True,
) -> DemoFolder:
    """The demo folder, ready for ``tessphot run``.

    Every stage up to the todo list is done, each only if missing.
    """
    settings = settings or load_settings()
    demo = ensure_demo_input(folder, prf_dir, overwrite, settings, progress)
    _prepare_demo(demo, settings, prf_dir, progress)
    return demo


def _prepare_demo(demo: DemoFolder, settings: dict, prf_dir: str | None, progress: bool) -> dict:
    """The catalog, prepare and todo stages on the demo's data, their files recorded as its own.

    Only missing outputs are made: after new data every output of the old ones is gone.
    """
    with demo.recording():
        return prepare_simulated(demo.path, settings, prf_dir=prf_dir, progress=progress)


def run_demo(
    folder: str | os.PathLike | None = None,
    prf_dir: str | None = None,
    overwrite: bool = False,
    settings: dict | None = None,
    progress: bool = True,
) -> int:
    """Simulate the demo sector and run every stage on it.

    Prints where the results are, the status summary and the precision table. With
    ``overwrite`` everything the demo made before is removed and made again.

    Returns
    -------
    int
        Exit code (0 on success).
    """
    settings = settings or load_settings()
    demo = ensure_demo_input(folder, prf_dir, overwrite, settings, progress)
    folder = demo.path
    stages = _prepare_demo(demo, settings, prf_dir, progress)
    ffis = stages["ffis"]
    first, last = read_ffi(ffis[0]), read_ffi(ffis[-1])
    sector, camera, ccd = stages["sector"], stages["camera"], stages["ccd"]
    print(f"tessphot demo in {folder}")
    print(
        f"  simulate: {len(ffis)} FFIs of sector {sector} camera {camera} CCD {ccd}, "
        f"{first.shape[0]}x{first.shape[1]} px at science pixel {first.origin}, cadences "
        f"{first.cadenceno}-{last.cadenceno}, BTJD {first.tstart:.4f}-{last.tstop:.4f}"
    )
    print(f"            FFIs in {ffis[0].parent}, truth and TIC-like catalog in {folder / 'truth'}")
    print(f"  catalog:  {stages['catalog']}")
    with h5py.File(stages["prepared"], "r") as h5:
        motion = h5["motion"].attrs
        print(f"  prepare:  {stages['prepared']}")
        print(
            f"            {h5['images'].shape[0]} frames; jitter from {motion['source']} "
            f"({motion['model']}, {motion['n_stars']} stars); reference frame "
            f"{h5.attrs['reference_frame']}"
        )
    print(f"  todo:     {stages['todo']}")
    # The demo's light curves stay in its folder (not $TESSPHOT_OUTPUT).
    output = folder / LIGHTCURVE_FOLDER
    report = None
    if _tasks_left(stages["todo"]):
        with demo.recording():
            report = run_photometry(folder, output, run_all=True, settings=settings["photometry"])
    print(f"  run:      light curves in {output}")
    if report is not None:
        for line in format_summary(report).splitlines():
            print(f"            {line}")
    else:
        counts = ", ".join(f"{name} {n}" for name, n in _status_counts(stages["todo"]).items())
        print(f"            every task was done already ({counts}; -o simulates and runs again)")
    with demo.recording():
        corrections = run_corrections(folder, output, settings=settings["correct"])
    totals = ", ".join(f"{name} {n}" for name, n in sorted(corrections.totals.items()))
    print(f"  correct:  FLUX_CORR of the light curves ({totals})")
    for path in corrections.cbv_files:
        print(f"            CBVs {path} (plot {path.with_suffix('.png').name})")
    with demo.recording():
        page = write_report_or_warn(folder, output)
    if page is not None:
        print(f"  report:   {page}")
    print()
    print(format_table(score_sector(folder, output)))
    scored = corrections_report(score_sector_run(folder, output))
    if scored is not None:
        print()
        print("\n".join(format_corrections(scored)))
    return 0


def _status_counts(todo: Path) -> dict[str, int]:
    """Tasks per status name of a todo file (read-only)."""
    con = sqlite3.connect(f"file:{todo}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT status, COUNT(*) FROM todolist GROUP BY status").fetchall()
    finally:
        con.close()
    return {
        (STATUS(s).name if s is not None else "TO DO"): n
        for s, n in sorted(rows, key=lambda r: -1 if r[0] is None else r[0])
    }


def _tasks_left(todo: Path) -> bool:
    """Whether the todo file has tasks still to do."""
    con = sqlite3.connect(f"file:{todo}?mode=ro", uri=True)
    try:
        return bool(con.execute("SELECT COUNT(*) FROM todolist WHERE status IS NULL").fetchone()[0])
    finally:
        con.close()
