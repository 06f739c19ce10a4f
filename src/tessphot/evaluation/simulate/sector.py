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
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import h5py
import numpy as np
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.time import Time
from astropy.wcs import WCS

from tessphot.config.simulate import SimulationConfig
from tessphot.constants import (
    FIRST_SCIENCE_CCD_COLUMN,
    FIRST_SCIENCE_CCD_ROW,
    SCIENCE_COLUMN_OFFSET,
    SCIENCE_SIZE,
    TMAG_ZEROPOINT,
    ffi_cadence,
    tmag_to_flux,
)
from tessphot.evaluation.simulate import detector, jitter, variability
from tessphot.evaluation.simulate.background import BackgroundModel
from tessphot.evaluation.simulate.cadences import Cadences, make_cadences, require_sector1_dir
from tessphot.evaluation.simulate.ffi_writer import FrameInfo, write_ffi
from tessphot.evaluation.simulate.pointing import boresight_pixel, jittered_wcs, move_positions
from tessphot.evaluation.simulate.prf_differences import AppliedPRFDifferences, prf_cards
from tessphot.evaluation.simulate.stars import StarField, simulation_stars, write_catalog
from tessphot.evaluation.simulate.systematics import AppliedSystematics, SystematicsModel
from tessphot.evaluation.simulate.truth import (
    TRUTH_FORMAT_VERSION,
    TruthFrames,
    atomic_truth,
    write_jitter,
    write_prf_differences,
    write_star_table,
    write_systematics,
    write_times,
)
from tessphot.geometry import SectorGeometry, sector_geometry, shift_wcs
from tessphot.logs import progress_bar
from tessphot.prf import load_prf
from tessphot.timefix import stamp_error
from tessphot.version import __version__

log = logging.getLogger(__name__)


@dataclass
class TimeStamps:
    """Times of the cadences as the headers give them (stamped) and for the truth."""

    #: Mid-exposure times [TJD, spacecraft clock] and the barycentric correction [d].
    tmid: np.ndarray
    barycorr: np.ndarray
    #: Exposure start and stop as stamped by the data release's clock [TJD].
    start: np.ndarray
    stop: np.ndarray
    #: DATE-OBS and DATE-END (UTC, ISO).
    date_obs: np.ndarray
    date_end: np.ndarray


def time_stamps(
    config: SimulationConfig, geometry: SectorGeometry, cadences: Cadences
) -> TimeStamps:
    """The headers' and the truth's times of the cadences.

    Parameters
    ----------
    config : SimulationConfig
        The simulation's settings (data release, camera, CCD).
    geometry : SectorGeometry
        The sector's geometry (the CCD centre for the barycentric correction).
    cadences : Cadences
        The cadences.

    Returns
    -------
    TimeStamps
    """
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
    return TimeStamps(tmid, barycorr, stamped_start, stamped_stop, date_obs, date_end)


def pointing_jitter(
    config: SimulationConfig, rng: np.random.Generator, cadences: Cadences
) -> np.ndarray:
    """Row shift, column shift [px] and rotation [rad] of every cadence (``config.jitter``)."""
    n_cad = cadences.tstart.size
    if config.jitter == "sector1":
        folder = require_sector1_dir(config.sector1_dir, "--jitter sector1")
        return jitter.sector1_jitter(folder, config.camera, n_cad)
    if config.jitter == "random":
        return jitter.random_jitter(rng, n_cad, cadences.dumps)
    raise ValueError(f"jitter must be 'random' or 'sector1', not {config.jitter!r}")


@dataclass
class Scene:
    """What every frame is drawn from: the stars, their signals, the sky and the pointing."""

    stars: StarField
    #: Mean flux of every star [e-/s].
    flux0: np.ndarray
    signals: variability.Signals
    background: BackgroundModel
    prf: object
    #: Per cadence: row shift, column shift [px], rotation [rad] about :attr:`centre`.
    shifts: np.ndarray
    centre: tuple[float, float]
    #: Shape and science-area origin (row, column) of the simulated region.
    shape: tuple[int, int]
    origin: tuple[int, int]
    #: The common-mode systematics (None: off, ``config.systematics``).
    systematics: AppliedSystematics | None = None
    #: The PRF's differences from the model (None: off, ``config.prf.enabled``).
    prf_differences: AppliedPRFDifferences | None = None

    def frame(self, k: int, cadences: Cadences):
        """The true state of cadence ``k``: star positions, fluxes, star light and sky.

        Parameters
        ----------
        k : int
            Cadence index.
        cadences : Cadences
            The cadences.

        Returns
        -------
        rows, cols, fluxes, starlight, sky : numpy.ndarray
            The stars' positions [science-area px] and mean fluxes over the exposure
            [e-/s] (times ``1 + m`` with systematics); the images of the stars and of the
            sky [e-/s/px] (the additive systematic apart: :meth:`rate`).
        """
        drow_k, dcol_k, theta = self.shifts[k]
        rows, cols = move_positions(
            self.stars.row, self.stars.col, drow_k, dcol_k, theta, self.centre
        )
        fluxes = self.flux0 * self.signals.exposure_average(cadences.tstart[k], cadences.tstop[k])
        if self.systematics is not None:
            fluxes = fluxes * self.systematics.factor(k)
        render = self.prf.render
        if self.prf_differences is not None:
            render = partial(self.prf_differences.render, k, self.prf)
        starlight = render(
            rows,
            cols,
            fluxes,
            self.shape,
            self.origin,
            node_rows=self.stars.row,
            node_cols=self.stars.col,
        )
        sky = self.background.evaluate(
            0.5 * (cadences.tstart[k] + cadences.tstop[k]), self.shape, self.origin
        )
        return rows, cols, fluxes, starlight, sky

    def rate(self, k: int, starlight: np.ndarray, sky: np.ndarray) -> np.ndarray:
        """The true rate [e-/s/px] of cadence ``k`` before saturation: stars, sky, systematics."""
        if self.systematics is None:
            return starlight + sky
        return starlight + sky + self.systematics.additive(k)


@dataclass
class Camera:
    """The detector of the simulation and what the written frames' headers say."""

    config: SimulationConfig
    geometry: SectorGeometry
    exposure: detector.Exposure
    read_noise: np.ndarray
    gains: np.ndarray
    #: Header cards of the simulation (SIM*).
    extra: dict
    #: Whether whole FFIs (with collateral pixels) are written rather than a crop.
    full: bool
    #: WCS and jitter centre in the written image's pixels; its first column.
    hdu_wcs: WCS
    hdu_centre: tuple[float, float]
    col_offset: int
    #: Read noise of every column of the region.
    rn_cols: np.ndarray

    @classmethod
    def build(cls, config, geometry, exposure, read_noise, gains, extra, centre) -> Camera:
        """The camera of a simulation; the written images' WCS follows ``config.size``."""
        r0, _, c0, c1 = config.region()
        wcs = geometry.science_wcs
        full = config.size is None
        col_offset = SCIENCE_COLUMN_OFFSET if full else 0
        hdu_wcs = shift_wcs(wcs, 0.0, col_offset) if full else shift_wcs(wcs, -r0, -c0)
        hdu_centre = (centre[0] - (0 if full else r0), centre[1] + col_offset - (0 if full else c0))
        rn_cols = detector.output_read_noise(read_noise, c1 - c0, c0)
        return cls(
            config,
            geometry,
            exposure,
            read_noise,
            gains,
            extra,
            full,
            hdu_wcs,
            hdu_centre,
            col_offset,
            rn_cols,
        )

    def expose(self, rng: np.random.Generator, rate: np.ndarray):
        """The calibrated image and its uncertainty [e-/s] of a true rate (full frame or crop)."""
        image, uncert = detector.expose(rng, rate, self.exposure, self.rn_cols)
        if self.full:
            image, uncert = detector.full_frame(rng, image, uncert, self.exposure, self.read_noise)
        return image, uncert

    def frame_info(self, k: int, cadences: Cadences, stamps: TimeStamps, shift) -> FrameInfo:
        """The header values of cadence ``k``, whose pointing moved by ``shift``."""
        config, exposure, geometry = self.config, self.exposure, self.geometry
        r0, _, c0, _ = config.region()
        drow_k, dcol_k, theta = shift
        return FrameInfo(
            sector=config.sector,
            camera=config.camera,
            ccd=config.ccd,
            ffiindex=int(cadences.ffiindex[k]),
            quality=int(cadences.quality[k]),
            tstart_tjd=float(stamps.start[k]),
            tstop_tjd=float(stamps.stop[k]),
            barycorr=float(stamps.barycorr[k]),
            date_obs=stamps.date_obs[k][:23] + "Z",
            date_end=stamps.date_end[k][:23] + "Z",
            wcs=jittered_wcs(self.hdu_wcs, drow_k, dcol_k, theta, self.hdu_centre),
            crval1p=FIRST_SCIENCE_CCD_COLUMN + c0 - self.col_offset,
            crval2p=FIRST_SCIENCE_CCD_ROW + r0,
            exposure_days=exposure.exposure_time / 86400.0,
            deadc=exposure.deadc,
            num_frm=exposure.num_frames,
            nreadout=exposure.num_coadded,
            timedel=ffi_cadence(config.sector) / 86400.0,
            gains=tuple(self.gains),
            read_noise=tuple(self.read_noise),
            data_rel=config.data_rel,
            pointing=(geometry.ra_nom, geometry.dec_nom, geometry.roll_nom),
            btc_pix=(SCIENCE_SIZE / 2, SCIENCE_SIZE / 2 + SCIENCE_COLUMN_OFFSET),
            extra=self.extra,
        )


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

    With ``config.systematics`` the stars' fluxes are rendered times ``1 + m`` (``flux`` is
    that rendered flux) and an additive term is added to the images (not to
    ``background``); the group ``systematics`` keeps ``basis`` (cadence, component) and
    ``coefficients`` (star, component), ``m = coefficients @ basis.T``, the
    ``additive_map`` (y, x) [e-/s/px] of the region and its ``additive_profile`` (cadence)
    (:mod:`tessphot.evaluation.simulate.systematics`). Without them there is no such group.

    With ``config.prf.enabled`` the stars are rendered with a PRF that differs from the model
    (:mod:`tessphot.evaluation.simulate.prf_differences`); the group ``prf_differences``
    keeps how (:func:`tessphot.evaluation.simulate.truth.write_prf_differences`).

    Parameters
    ----------
    config : SimulationConfig
        The simulation's settings.
    outdir : path-like
        Output folder (``ffi/`` and ``truth/`` are made in it).
    progress : bool
        Whether to show a progress bar.

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
    chosen = variability.chosen_signals(config.extra_stars)
    epoch = geometry.reference_tjd
    stars = simulation_stars(config, rng, wcs, epoch)
    flux0 = tmag_to_flux(stars.tmag)
    signals = variability.draw_signals(
        rng, len(stars), config.variable_fraction, epoch, red_noise_max=config.red_noise_max
    )
    signals = variability.with_chosen(signals, stars.starid, chosen, epoch, config.seed)
    stamps = time_stamps(config, geometry, cadences)
    shifts = pointing_jitter(config, rng, cadences)
    centre = ((SCIENCE_SIZE - 1) / 2, (SCIENCE_SIZE - 1) / 2)
    background = BackgroundModel.draw(
        rng,
        boresight_pixel(wcs, geometry),
        cadences.orbits,
        scatter_peak=config.scatter_peak,
        ramp=config.scatter_ramp,
    )
    read_noise = rng.uniform(*detector.READ_NOISE_RANGE, 4)
    gains = rng.uniform(*detector.GAIN_RANGE, 4)
    scene = Scene(stars, flux0, signals, background, prf, shifts, centre, shape, (r0, c0))
    if config.systematics:
        scene.systematics = AppliedSystematics.build(
            SystematicsModel.draw(config, geometry, cadences),
            cadences,
            wcs,
            stars.row,
            stars.col,
            shape,
            (r0, c0),
        )
    if config.prf.enabled:
        scene.prf_differences = AppliedPRFDifferences.build(config, prf, stars, cadences)
    extra = _header_cards(config, prf, len(stars))
    camera = Camera.build(config, geometry, exposure, read_noise, gains, extra, centre)

    ffi_dir = outdir / "ffi"
    truth_dir = outdir / "truth"
    ffi_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    stem = f"sector{config.sector:03d}_camera{config.camera}_ccd{config.ccd}"
    catalog_path = truth_dir / f"tic_{stem}.csv"
    write_catalog(stars, catalog_path)
    truth_path = truth_dir / f"truth_{stem}.hdf5"
    with atomic_truth(truth_path) as tmp_truth:
        with h5py.File(tmp_truth, "w", rdcc_nbytes=64 * 2**20) as h5:
            _write_truth_header(h5, config, camera, prf, _settings(config, camera, scene))
            write_star_table(h5, stars, flux0, signals)
            write_times(h5, cadences, stamps.tmid, stamps.barycorr)
            write_jitter(h5, shifts, centre)
            if scene.systematics is not None:
                write_systematics(h5, scene.systematics, (r0, c0))
            if scene.prf_differences is not None:
                write_prf_differences(h5, scene.prf_differences)
            truth = TruthFrames.create(h5, n_cad, len(stars), shape, (r0, c0))
            paths = [
                _simulate_frame(k, scene, camera, cadences, stamps, truth, rng, ffi_dir)
                for k in progress_bar(range(n_cad), desc="simulate", unit="frame", enabled=progress)
            ]
    log.info("Wrote %d FFIs to %s, truth %s, catalog %s", n_cad, ffi_dir, truth_path, catalog_path)
    return {"ffis": paths, "truth": truth_path, "catalog": catalog_path, "n_stars": len(stars)}


def _simulate_frame(
    k: int,
    scene: Scene,
    camera: Camera,
    cadences: Cadences,
    stamps: TimeStamps,
    truth: TruthFrames,
    rng: np.random.Generator,
    ffi_dir: Path,
) -> Path:
    """Draw, write and record in the truth cadence ``k``; the FFI written."""
    rows, cols, fluxes, starlight, sky = scene.frame(k, cadences)
    image, uncert = camera.expose(rng, detector.saturate(scene.rate(k, starlight, sky)))
    info = camera.frame_info(k, cadences, stamps, scene.shifts[k])
    path = write_ffi(ffi_dir, info, image, uncert, camera.config.compress)
    truth.write(k, fluxes, rows, cols, sky)
    return path


def _header_cards(config: SimulationConfig, prf, n_stars: int) -> dict:
    """The simulation's own header cards (SIM*) of every frame."""
    return {
        "SIMSEED": (config.seed, "tessphot simulation random seed"),
        "SIMPRF": (prf.short_name, "PRF model of the simulation"),
        "SIMZP": (TMAG_ZEROPOINT, "[mag] flux = 10^(-0.4 (Tmag - ZP)) e-/s"),
        "SIMFWELL": (detector.FULL_WELL, "[e-] full well per 2-s frame"),
        "SIMNSTAR": (n_stars, "number of simulated stars"),
        "SIMJITT": (config.jitter, "source of the simulated pointing jitter"),
        **_systematics_cards(config),
        **prf_cards(config.prf),
    }


def _systematics_cards(config: SimulationConfig) -> dict:
    """The header cards of the systematics' settings (none when they are off)."""
    if not config.systematics:
        return {}
    return {
        "SIMSYST": (True, "common-mode systematics simulated"),
        "SIMSTHRM": (config.systematics_thermal, "thermal ramp amplitude (relative)"),
        "SIMSTTAU": (config.systematics_thermal_time, "[d] thermal ramp e-folding time"),
        "SIMSDRFT": (config.systematics_drift, "drift amplitude (relative)"),
        "SIMSDUMP": (config.systematics_dumps, "momentum-dump step rms (relative)"),
        "SIMSADD": (config.systematics_additive, "[e-/s/px] additive scattered light rms"),
    }


def _settings(config: SimulationConfig, camera: Camera, scene: Scene) -> dict:
    """Every setting of the simulation and what was drawn for it (the truth's ``settings``)."""
    return {
        **{k: v for k, v in asdict(config).items() if k != "extra_stars"},
        "prf_model": scene.prf.name,
        "zeropoint": TMAG_ZEROPOINT,
        "full_well": detector.FULL_WELL,
        "read_noise": camera.read_noise.tolist(),
        "background": {k: v for k, v in asdict(scene.background).items()},
        "n_stars": len(scene.stars),
        "tessphot_version": __version__,
        **(
            {}
            if scene.systematics is None
            else {"systematics_model": asdict(scene.systematics.model)}
        ),
    }


def _write_truth_header(
    h5: h5py.File, config: SimulationConfig, camera: Camera, prf, settings: dict
) -> None:
    """The truth file's attributes: the settings, the detector and the reference WCS."""
    h5.attrs["format_version"] = TRUTH_FORMAT_VERSION
    h5.attrs["settings"] = json.dumps(settings)
    for key in ("sector", "camera", "ccd", "seed"):
        h5.attrs[key] = getattr(config, key)
    h5.attrs["cadence"] = ffi_cadence(config.sector)
    h5.attrs["region"] = config.region()
    h5.attrs["prf_model"] = prf.name
    h5.attrs["zeropoint"] = TMAG_ZEROPOINT
    h5.attrs["exposure_time"] = camera.exposure.exposure_time
    h5.attrs["num_coadded"] = camera.exposure.num_coadded
    h5.attrs["read_noise"] = camera.read_noise
    h5.attrs["gains"] = camera.gains
    h5.attrs["data_rel"] = config.data_rel
    h5.attrs["wcs"] = camera.geometry.science_wcs.to_header_string(relax=True)
