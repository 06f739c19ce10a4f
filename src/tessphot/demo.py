"""The built-in demo: a small simulated sector run through every stage that exists."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from tessphot.paths import demo_folder
from tessphot.settings import load_settings

log = logging.getLogger(__name__)

#: File in the demo folder recording the settings its data were simulated with.
DEMO_MARKER = "demo.json"


def _demo_config(settings: dict, prf_dir: str | None):
    from tessphot.simulate.config import SimulationConfig

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
    )


def ensure_demo_input(
    folder: str | os.PathLike | None = None,
    prf_dir: str | None = None,
    overwrite: bool = False,
    settings: dict | None = None,
    progress: bool = True,
) -> Path:
    """Simulate the demo data into ``folder`` unless the same data are already there.

    Returns
    -------
    Path
        The demo input folder.
    """
    from dataclasses import asdict

    from tessphot.simulate.sector import simulate_sector

    folder = Path(folder) if folder else demo_folder()
    config = _demo_config(settings or load_settings(), prf_dir)
    wanted = {k: v for k, v in asdict(config).items() if k != "extra_stars"}
    marker = folder / DEMO_MARKER
    if not overwrite and marker.is_file():
        try:
            if json.loads(marker.read_text()) == json.loads(json.dumps(wanted)):
                log.info("Demo data already simulated in %s", folder)
                return folder
        except json.JSONDecodeError:
            pass
    folder.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    # New data: everything derived from the old data goes too.
    stale = [
        *(folder / "ffi").glob("*_ffic.fits*"),
        *folder.glob("catalog_sector*.sqlite"),
        *folder.glob("sector*_camera*_ccd*.hdf5*"),
        *folder.glob("todo.sqlite*"),
    ]
    for old in stale:
        old.unlink()
    shutil.rmtree(folder / "lightcurves", ignore_errors=True)
    log.info("Simulating the demo sector into %s", folder)
    simulate_sector(config, folder, progress=progress)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(wanted, indent=2))
    os.replace(tmp, marker)
    return folder


def run_demo(
    folder: str | os.PathLike | None = None,
    prf_dir: str | None = None,
    overwrite: bool = False,
    settings: dict | None = None,
    progress: bool = True,
) -> int:
    """Simulate the demo sector and run every stage that exists; print where results are.

    Returns
    -------
    int
        Exit code (0 on success).
    """
    import h5py

    from tessphot.catalog.make import catalog_path, make_catalogs
    from tessphot.catalog.sources.file import FileSource
    from tessphot.io import find_ffis, read_ffi
    from tessphot.prepare.run import prepare_ccd

    settings = settings or load_settings()
    folder = ensure_demo_input(folder, prf_dir, overwrite, settings, progress)
    ffis = find_ffis(folder)
    first, last = read_ffi(ffis[0]), read_ffi(ffis[-1])
    sector, camera, ccd = first.sector, first.camera, first.ccd
    tic = next((folder / "truth").glob("tic_*.csv"))
    print(f"tessphot demo in {folder}")
    print(
        f"  simulate: {len(ffis)} FFIs of sector {sector} camera {camera} CCD {ccd}, "
        f"{first.shape[0]}x{first.shape[1]} px at science pixel {first.origin}, cadences "
        f"{first.cadenceno}-{last.cadenceno}, BTJD {first.tstart:.4f}-{last.tstop:.4f}"
    )
    print(f"            FFIs in {ffis[0].parent}, truth and TIC-like catalog in {tic.parent}")

    make_catalogs(sector, folder, FileSource([tic]), [camera], [ccd], overwrite=overwrite)
    print(f"  catalog:  {catalog_path(folder, sector, camera, ccd)}")

    prepared = prepare_ccd(
        folder,
        sector,
        camera,
        ccd,
        settings=settings["prepare"],
        workers=settings["prepare"].get("workers"),
        prf_dir=prf_dir,
        overwrite=overwrite,
        progress=progress,
    )
    with h5py.File(prepared, "r") as h5:
        motion = h5["motion"].attrs
        print(f"  prepare:  {prepared}")
        print(
            f"            {h5['images'].shape[0]} frames; jitter from {motion['source']} "
            f"({motion['model']}, {motion['n_stars']} stars); reference frame "
            f"{h5.attrs['reference_frame']}"
        )
    print("  todo and photometry stages: not implemented yet (issue 5)")
    return 0
