"""Simulate a sector of calibrated FFIs for one camera and CCD, with its truth.

Outputs in the output folder:

- ``ffi/tess*-sSSSS-C-D-0120-s_ffic.fits[.gz]``: one FFI per cadence, streamed to disk one
  frame at a time;
- ``truth/truth_sectorSSS_cameraC_ccdD.hdf5``: the truth (see :func:`simulate_sector`);
- ``truth/tic_sectorSSS_cameraC_ccdD.csv``: a TIC-like catalogue of the simulated stars
  (those on the region and just off it), columns ID, ra, dec, pmRA, pmDEC, Tmag, Teff.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.table import Table
from astropy.time import Time
from tqdm.auto import tqdm

from tessphot.constants import (
    FFIINDEX_SECTOR1_FIRST,
    FFIINDEX_SECTOR1_TSTART_TJD,
    FIRST_SCIENCE_CCD_COLUMN,
    FIRST_SCIENCE_CCD_ROW,
    FULL_FRAME_SHAPE,
    SCIENCE_COLUMN_OFFSET,
    SCIENCE_SIZE,
    TMAG_ZEROPOINT,
    ffi_cadence,
    tmag_to_flux,
)
from tessphot.prf import load_prf
from tessphot.evaluation.simulate import detector, jitter, variability
from tessphot.evaluation.simulate.background import BackgroundModel
from tessphot.evaluation.simulate.config import SimulationConfig
from tessphot.evaluation.simulate.ffi_writer import FrameInfo, write_ffi
from tessphot.evaluation.simulate.pointing import jittered_wcs, sector_geometry, shift_wcs
from tessphot.evaluation.simulate.stars import DEMO_STAR_TIC, DEMO_STAR_TMAG, make_star_field
from tessphot.timefix import stamp_error
from tessphot.version import __version__

log = logging.getLogger(__name__)

#: Version of the truth-file layout.
TRUTH_FORMAT_VERSION = 1
#: Stars this far outside the region [px] are simulated and catalogued: their light spills in.
CATALOG_MARGIN = 10
#: Bright stars are placed at least this far inside the region [px].
BRIGHT_EDGE_DISTANCE = 20
#: Truth backgrounds of regions larger than this many pixels are stored binned.
TRUTH_BACKGROUND_FULL_MAX = 1024 * 1024
TRUTH_BACKGROUND_BINNING = 8
#: Momentum dumps: interval [d] and offset range of the first dump after the start [d].
DUMP_INTERVAL = 3.125
FIRST_DUMP_OFFSET = (0.3, 1.5)
#: SPOC quality bits set on a momentum-dump cadence (Desat 32 + ManualExclude 128 + CoarsePoint 4).
DUMP_QUALITY = 32 | 128 | 4


@dataclass
class Cadences:
    """Time stamps of the simulated cadences (TJD, spacecraft clock)."""

    tstart: np.ndarray
    tstop: np.ndarray
    ffiindex: np.ndarray
    quality: np.ndarray
    dumps: np.ndarray


def make_cadences(config: SimulationConfig, geometry, rng: np.random.Generator) -> Cadences:
    """The sector's FFI cadences: regular stamps, an orbit gap, momentum dumps, quality."""
    cad = ffi_cadence(config.sector) / 86400.0
    n_all = int(np.floor((geometry.tjd_end - geometry.tjd_start) / cad))
    tstart = geometry.tjd_start + cad * np.arange(n_all)
    gap0, gap1 = geometry.orbit_gap
    keep = (tstart + cad <= gap0) | (tstart >= gap1)
    tstart = tstart[keep]
    first_index = FFIINDEX_SECTOR1_FIRST + int(
        round((geometry.tjd_start - FFIINDEX_SECTOR1_TSTART_TJD) / cad)
    )
    ffiindex = first_index + np.flatnonzero(keep)
    if config.cadences is not None:
        if config.cadences < 1:
            raise ValueError("--cadences must be at least 1")
        tstart, ffiindex = tstart[: config.cadences], ffiindex[: config.cadences]
    tstop = tstart + cad
    n = tstart.size

    quality = np.zeros(n, dtype=np.int32)
    dumps = np.zeros(n, dtype=bool)
    if config.quality == "sector1":
        real = np.loadtxt(
            Path(_need(config.sector1_dir, "--quality sector1")) / "quality_s0001.txt"
        )
        quality = real.astype(np.int32)[np.arange(n) % real.size]
        dumps = (quality & 32) > 0
    elif config.quality == "synthetic":
        first = geometry.tjd_start + rng.uniform(*FIRST_DUMP_OFFSET)
        for t_dump in np.arange(first, geometry.tjd_end, DUMP_INTERVAL):
            hit = (tstart <= t_dump) & (t_dump < tstop)
            dumps |= hit
        quality[dumps] |= DUMP_QUALITY
    else:
        raise ValueError(f"quality must be 'synthetic' or 'sector1', not {config.quality!r}")
    return Cadences(tstart, tstop, ffiindex, quality, dumps)


def _need(value, what: str):
    if value is None:
        raise ValueError(f"{what} needs the folder of real sector-1 data (--sector1-dir)")
    return value


def _chosen_signals(extra_stars) -> dict[int, Mapping[str, Any]]:
    """Star ID to the signal chosen for it: the optional fifth element of an extra star."""
    chosen = {}
    for star in extra_stars:
        if len(star) not in (4, 5):
            raise ValueError(
                f"an extra star is (starid, tmag, row, col[, signal]), not {tuple(star)!r}"
            )
        if len(star) == 5 and star[4] is not None:
            if not isinstance(star[4], Mapping):
                raise ValueError(f"the signal of extra star {star[0]} must be a mapping")
            chosen[int(star[0])] = star[4]
    return chosen


def _default_stars(region) -> int:
    """Default star count: ~0.06 stars per pixel brighter than Tmag 17 (a moderately
    crowded field), i.e. ~250 000 per CCD."""
    r0, r1, c0, c1 = region
    return int(round(0.06 * (r1 - r0) * (c1 - c0)))


def simulate_sector(config: SimulationConfig, outdir: Path | str, progress: bool = True) -> dict:
    """Simulate FFIs of one sector, camera and CCD and write them with their truth.

    The truth file (HDF5) holds: attributes with every setting; ``stars`` (TIC ID, RA/Dec at
    J2000 and at the sector epoch, proper motions, Tmag, Teff, mean flux [e-/s], reference
    pixel position); ``signals`` (the injected signal of each star: drawn, or chosen for an
    extra star, ``config.extra_stars``); per cadence ``time/tstart``, ``time/tstop``
    [TJD], ``time/barycorr`` [d], ``time/ffiindex``, ``time/quality``; ``jitter`` (row shift,
    column shift [px], rotation [rad] about ``jitter.attrs['centre']``); ``flux`` (cadence,
    star) true mean flux in each exposure [e-/s]; ``row``, ``col`` (cadence, star) true
    positions [science-area px]; ``background`` (cadence, y, x) true sky [e-/s/px] of the
    region (binned by ``attrs['binning']`` for regions above 1024x1024 px).

    Returns
    -------
    dict
        Paths of what was written (``ffis``, ``truth``, ``catalog``) and counts.
    """
    outdir = Path(outdir)
    rng = np.random.default_rng(config.seed)
    geometry = sector_geometry(config.sector, config.camera, config.ccd)
    region = config.region()
    r0, r1, c0, c1 = region
    shape = (r1 - r0, c1 - c0)
    wcs = geometry.science_wcs
    cadences = make_cadences(config, geometry, rng)
    n_cad = cadences.tstart.size
    exposure = detector.Exposure(ffi_cadence(config.sector))
    prf = load_prf(config.prf_dir, config.sector, config.camera, config.ccd)
    log.info(
        "Simulating sector %d camera %d CCD %d: %d cadences of %d x %d px, %s",
        config.sector,
        config.camera,
        config.ccd,
        n_cad,
        shape[0],
        shape[1],
        prf.name,
    )

    # ---- Stars ------------------------------------------------------------------------
    m = CATALOG_MARGIN
    n_region = config.stars if config.stars is not None else _default_stars(region)
    grown = ((r1 - r0 + 2 * m) * (c1 - c0 + 2 * m)) / ((r1 - r0) * (c1 - c0))
    include = [tuple(star[:4]) for star in config.extra_stars]
    chosen = _chosen_signals(config.extra_stars)
    if config.demo_star:
        include.append((DEMO_STAR_TIC, DEMO_STAR_TMAG, (r0 + r1) / 2 - 0.3, (c0 + c1) / 2 + 0.2))
    epoch = geometry.reference_tjd
    field_ = make_star_field(
        rng,
        wcs,
        (r0 - m, r1 + m, c0 - m, c1 + m),
        n_stars=int(round(n_region * grown)),
        n_bright=0,
        epoch_tjd=epoch,
        include=include,
    )
    if config.bright:
        lo, hi = BRIGHT_EDGE_DISTANCE, BRIGHT_EDGE_DISTANCE
        inner = (r0 + lo, max(r1 - hi, r0 + lo + 1), c0 + lo, max(c1 - hi, c0 + lo + 1))
        bright = make_star_field(rng, wcs, inner, 0, config.bright, epoch)
        field_ = _merge_fields(field_, bright)
    flux0 = tmag_to_flux(field_.tmag)
    signals = variability.draw_signals(rng, len(field_), config.variable_fraction, epoch)
    signals = variability.with_chosen(signals, field_.starid, chosen, epoch, config.seed)

    # ---- Time stamps --------------------------------------------------------------------
    centre_ra, centre_dec = geometry.ccd_centre
    tmid = 0.5 * (cadences.tstart + cadences.tstop)
    # Barycentric correction for the CCD centre as seen from the geocentre (the TESS orbit
    # term, up to ~1.2 s, is left out: the truth keeps spacecraft times, so it is exact).
    geocentre = EarthLocation.from_geocentric(0.0, 0.0, 0.0, unit="m")
    times = Time(tmid + 2457000.0, format="jd", scale="tdb", location=geocentre)
    barycorr = times.light_travel_time(
        SkyCoord(centre_ra, centre_dec, unit="deg"), kind="barycentric"
    ).to_value("day")
    stamp_shift = {
        pos: stamp_error(config.data_rel, None, config.camera, config.ccd, pos) / 86400.0
        for pos in ("start", "end")
    }
    stamped_start = cadences.tstart + stamp_shift["start"]
    stamped_stop = cadences.tstop + stamp_shift["end"]
    date_obs = Time(stamped_start + 2457000.0, format="jd", scale="tdb").utc.isot
    date_end = Time(stamped_stop + 2457000.0, format="jd", scale="tdb").utc.isot

    # ---- Pointing -------------------------------------------------------------------------
    if config.jitter == "sector1":
        shifts = jitter.sector1_jitter(
            _need(config.sector1_dir, "--jitter sector1"), config.camera, n_cad
        )
    elif config.jitter == "random":
        shifts = jitter.random_jitter(rng, n_cad, cadences.dumps)
    else:
        raise ValueError(f"jitter must be 'random' or 'sector1', not {config.jitter!r}")
    centre = ((SCIENCE_SIZE - 1) / 2, (SCIENCE_SIZE - 1) / 2)

    # ---- Sky and detector ---------------------------------------------------------------
    boresight = _boresight_pixel(wcs, geometry)
    orbits = [
        (geometry.tjd_start, geometry.orbit_gap[0]),
        (geometry.orbit_gap[1], geometry.tjd_end),
    ]
    background = BackgroundModel.draw(rng, boresight, orbits)
    read_noise = rng.uniform(*detector.READ_NOISE_RANGE, 4)
    gains = rng.uniform(*detector.GAIN_RANGE, 4)
    full = config.size is None
    col_offset = SCIENCE_COLUMN_OFFSET if full else 0
    hdu_wcs = shift_wcs(wcs, 0.0, col_offset) if full else shift_wcs(wcs, -r0, -c0)
    hdu_centre = (centre[0] - (0 if full else r0), centre[1] + col_offset - (0 if full else c0))
    rn_cols = detector.output_read_noise(read_noise, shape[1], c0)

    settings = {
        **{k: v for k, v in asdict(config).items() if k != "extra_stars"},
        "prf_model": prf.name,
        "zeropoint": TMAG_ZEROPOINT,
        "full_well": detector.FULL_WELL,
        "read_noise": read_noise.tolist(),
        "background": {k: v for k, v in asdict(background).items()},
        "n_stars": len(field_),
        "tessphot_version": __version__,
    }
    extra = {
        "SIMSEED": (config.seed, "tessphot simulation random seed"),
        "SIMPRF": (prf.short_name, "PRF model of the simulation"),
        "SIMZP": (TMAG_ZEROPOINT, "[mag] flux = 10^(-0.4 (Tmag - ZP)) e-/s"),
        "SIMFWELL": (detector.FULL_WELL, "[e-] full well per 2-s frame"),
        "SIMNSTAR": (len(field_), "number of simulated stars"),
        "SIMJITT": (config.jitter, "source of the simulated pointing jitter"),
    }

    ffi_dir = outdir / "ffi"
    truth_dir = outdir / "truth"
    ffi_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    stem = f"sector{config.sector:03d}_camera{config.camera}_ccd{config.ccd}"
    catalog_path = truth_dir / f"tic_{stem}.csv"
    _write_catalog(field_, catalog_path)
    truth_path = truth_dir / f"truth_{stem}.hdf5"

    binning = 1 if shape[0] * shape[1] <= TRUTH_BACKGROUND_FULL_MAX else TRUTH_BACKGROUND_BINNING
    bshape = (shape[0] // binning, shape[1] // binning)
    fd, tmp_truth = tempfile.mkstemp(prefix=f".{truth_path.name}.", dir=truth_dir)
    os.close(fd)
    paths = []
    try:
        with h5py.File(tmp_truth, "w", rdcc_nbytes=64 * 2**20) as h5:
            h5.attrs["format_version"] = TRUTH_FORMAT_VERSION
            h5.attrs["settings"] = json.dumps(settings)
            for key in ("sector", "camera", "ccd", "seed"):
                h5.attrs[key] = getattr(config, key)
            h5.attrs["cadence"] = ffi_cadence(config.sector)
            h5.attrs["region"] = region
            h5.attrs["prf_model"] = prf.name
            h5.attrs["zeropoint"] = TMAG_ZEROPOINT
            h5.attrs["exposure_time"] = exposure.exposure_time
            h5.attrs["num_coadded"] = exposure.num_coadded
            h5.attrs["read_noise"] = read_noise
            h5.attrs["gains"] = gains
            h5.attrs["data_rel"] = config.data_rel
            h5.attrs["wcs"] = wcs.to_header_string(relax=True)
            _write_star_table(h5, field_, flux0, signals)
            tgrp = h5.create_group("time")
            tgrp["tstart"] = cadences.tstart
            tgrp["tstop"] = cadences.tstop
            tgrp["tmid"] = tmid
            tgrp["barycorr"] = barycorr
            tgrp["ffiindex"] = cadences.ffiindex
            tgrp["quality"] = cadences.quality
            tgrp.attrs["unit"] = (
                "TJD = BJD - 2457000 on the spacecraft clock (no barycentric correction)"
            )
            jit = h5.create_dataset("jitter", data=shifts)
            jit.attrs["columns"] = ["row_shift_px", "column_shift_px", "rotation_rad"]
            jit.attrs["centre"] = centre
            nst = len(field_)
            chunks = (min(16, n_cad), max(1, min(nst, 8192)))
            dflux = h5.create_dataset("flux", (n_cad, nst), "f8", chunks=chunks)
            drow = h5.create_dataset("row", (n_cad, nst), "f4", chunks=chunks)
            dcol = h5.create_dataset("col", (n_cad, nst), "f4", chunks=chunks)
            dbkg = h5.create_dataset(
                "background",
                (n_cad, *bshape),
                "f4",
                chunks=(1, *bshape),
                compression="gzip",
                compression_opts=1,
                shuffle=True,
            )
            dbkg.attrs["binning"] = binning
            dbkg.attrs["origin"] = (r0, c0)

            # Only stars that can shine onto the region are rendered.
            for k in tqdm(range(n_cad), desc="simulate", unit="frame", disable=not progress):
                drow_k, dcol_k, theta = shifts[k]
                rows, cols = _move(field_.row, field_.col, drow_k, dcol_k, theta, centre)
                fluxes = flux0 * signals.exposure_average(cadences.tstart[k], cadences.tstop[k])
                stars = prf.render(
                    rows, cols, fluxes, shape, (r0, c0), node_rows=field_.row, node_cols=field_.col
                )
                sky = background.evaluate(
                    0.5 * (cadences.tstart[k] + cadences.tstop[k]), shape, (r0, c0)
                )
                rate = detector.saturate(stars + sky)
                image, uncert = detector.expose(rng, rate, exposure, rn_cols)
                if full:
                    image, uncert = _full_frame(rng, image, uncert, exposure, read_noise)
                info = FrameInfo(
                    sector=config.sector,
                    camera=config.camera,
                    ccd=config.ccd,
                    ffiindex=int(cadences.ffiindex[k]),
                    quality=int(cadences.quality[k]),
                    tstart_tjd=float(stamped_start[k]),
                    tstop_tjd=float(stamped_stop[k]),
                    barycorr=float(barycorr[k]),
                    date_obs=date_obs[k][:23] + "Z",
                    date_end=date_end[k][:23] + "Z",
                    wcs=jittered_wcs(hdu_wcs, drow_k, dcol_k, theta, hdu_centre),
                    crval1p=FIRST_SCIENCE_CCD_COLUMN + c0 - col_offset,
                    crval2p=FIRST_SCIENCE_CCD_ROW + r0,
                    exposure_days=exposure.exposure_time / 86400.0,
                    deadc=exposure.deadc,
                    num_frm=exposure.num_frames,
                    nreadout=exposure.num_coadded,
                    timedel=ffi_cadence(config.sector) / 86400.0,
                    gains=tuple(gains),
                    read_noise=tuple(read_noise),
                    data_rel=config.data_rel,
                    pointing=(geometry.ra_nom, geometry.dec_nom, geometry.roll_nom),
                    btc_pix=(SCIENCE_SIZE / 2, SCIENCE_SIZE / 2 + SCIENCE_COLUMN_OFFSET),
                    extra=extra,
                )
                paths.append(write_ffi(ffi_dir, info, image, uncert, config.compress))
                dflux[k] = fluxes
                drow[k] = rows
                dcol[k] = cols
                if binning > 1:
                    sky = sky[: bshape[0] * binning, : bshape[1] * binning]
                    sky = sky.reshape(bshape[0], binning, bshape[1], binning).mean(axis=(1, 3))
                dbkg[k] = sky
        os.chmod(tmp_truth, 0o644)
        os.replace(tmp_truth, truth_path)
    except BaseException:
        Path(tmp_truth).unlink(missing_ok=True)
        raise
    log.info("Wrote %d FFIs to %s, truth %s, catalog %s", n_cad, ffi_dir, truth_path, catalog_path)
    return {"ffis": paths, "truth": truth_path, "catalog": catalog_path, "n_stars": len(field_)}


def _move(rows, cols, drow, dcol, theta, centre):
    """Positions after rotation by ``theta`` about ``centre`` and a translation."""
    cos, sin = np.cos(theta), np.sin(theta)
    x, y = cols - centre[1], rows - centre[0]
    return (sin * x + cos * y + centre[0] + drow, cos * x - sin * y + centre[1] + dcol)


def _boresight_pixel(wcs, geometry) -> tuple[float, float]:
    """Science-area (row, column) of the camera boresight (usually just off one corner)."""
    col, row = wcs.all_world2pix([[geometry.camera_ra, geometry.camera_dec]], 0, quiet=True)[0]
    return float(row), float(col)


def _merge_fields(a, b):
    merged = {k: np.concatenate([getattr(a, k), getattr(b, k)]) for k in a.__dataclass_fields__}
    # The bright stars' IDs must not collide with the others.
    ids = merged["starid"]
    _, first = np.unique(ids, return_index=True)
    dup = np.setdiff1d(np.arange(ids.size), first)
    ids[dup] = ids.max() + 1 + np.arange(dup.size)
    order = np.argsort(merged["tmag"])
    return type(a)(**{k: v[order] for k, v in merged.items()})


def _full_frame(rng, image, uncert, exposure, read_noise):
    """Embed the science area in a 2078 x 2136 image with collateral pixels.

    Collateral and virtual pixels of calibrated FFIs hold the residual bias: zero mean with
    the read noise of their output.
    """
    rn_level = np.asarray(read_noise) * np.sqrt(exposure.num_coadded) / exposure.exposure_time
    full = np.empty(FULL_FRAME_SHAPE, dtype=np.float32)
    full_unc = np.empty(FULL_FRAME_SHAPE, dtype=np.float32)
    sigma = np.full(FULL_FRAME_SHAPE[1], rn_level.mean())
    # Leading columns: 11 per output; trailing virtual columns likewise.
    for out in range(4):
        sigma[11 * out : 11 * (out + 1)] = rn_level[out]
        start = SCIENCE_COLUMN_OFFSET + SCIENCE_SIZE + 11 * out
        sigma[start : start + 11] = rn_level[out]
    full[:] = rng.normal(0.0, 1.0, FULL_FRAME_SHAPE) * sigma[None, :]
    full_unc[:] = sigma[None, :]
    sl = (
        slice(0, SCIENCE_SIZE),
        slice(SCIENCE_COLUMN_OFFSET, SCIENCE_COLUMN_OFFSET + SCIENCE_SIZE),
    )
    full[sl] = image
    full_unc[sl] = uncert
    return full, full_unc


def _write_star_table(h5, field_, flux0, signals) -> None:
    table = np.zeros(
        len(field_),
        dtype=[
            ("starid", "i8"),
            ("ra_j2000", "f8"),
            ("dec_j2000", "f8"),
            ("ra", "f8"),
            ("dec", "f8"),
            ("pmra", "f8"),
            ("pmdec", "f8"),
            ("tmag", "f8"),
            ("teff", "f8"),
            ("flux", "f8"),
            ("row", "f8"),
            ("col", "f8"),
        ],
    )
    for name in table.dtype.names:
        table[name] = flux0 if name == "flux" else getattr(field_, name)
    ds = h5.create_dataset("stars", data=table)
    ds.attrs["description"] = (
        "ra/dec at the sector epoch, *_j2000 at the TIC epoch [deg]; pm [mas/yr]; flux: mean "
        "flux [e-/s]; row/col: reference position without jitter [science-area px]"
    )
    sig = h5.create_dataset("signals", data=signals.table)
    sig.attrs["kinds"] = json.dumps(variability.KIND_NAMES)


def _write_catalog(field_, path: Path) -> None:
    """TIC-like catalogue (TIC column names, J2000 positions) written atomically."""
    table = Table(
        {
            "ID": field_.starid,
            "ra": np.round(field_.ra_j2000, 9),
            "dec": np.round(field_.dec_j2000, 9),
            "pmRA": np.round(field_.pmra, 4),
            "pmDEC": np.round(field_.pmdec, 4),
            "Tmag": np.round(field_.tmag, 4),
            "Teff": field_.teff,
        }
    )
    tmp = path.with_name(f".{path.name}.tmp")
    table.write(tmp, format="ascii.csv", overwrite=True)
    os.replace(tmp, path)
