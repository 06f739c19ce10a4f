"""Aperture photometry measured against the simulator's truth (the small sector)."""

from __future__ import annotations

import math
import sqlite3
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.io import fits
from astropy.time import Time

from tessphot.constants import (
    BTJD_OFFSET,
    FIRST_SCIENCE_CCD_COLUMN,
    FIRST_SCIENCE_CCD_ROW,
    SATURATED_RATE,
    tmag_to_flux,
)
from tessphot.evaluation.scoring.photometry import score_sector
from tessphot.evaluation.simulate.truth import read_truth
from tessphot.lightcurve import ApertureBits, expected_noise, lightcurve_path
from tessphot.lightcurve.writer import settings_from_header
from tessphot.photometry.aperture_optimal import (
    beyond_mask,
    centred_targets,
    neighbours_own,
    optimal_aperture,
)
from tessphot.photometry.aperture_variability import variability_weights
from tessphot.photometry.scene_groups import GroupImages, GroupScene
from tessphot.photometry.stamps import STAMP_HEIGHT, stamp_size
from tessphot.photometry.target import open_target
from tessphot.prf import AnalyticPRF
from tessphot.sources import ffi_source
from tessphot.tasks import STATUS


def _method(cls, starid, folder, settings=None):
    """A photometry method on a target of the test sector (camera 1, CCD 4)."""
    return cls(open_target(starid, folder, 1, 1, 4, settings=settings), settings)


def _diagnostics(todo: Path) -> dict[int, dict]:
    con = sqlite3.connect(todo)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute(
            "SELECT t.starid, t.tmag, t.status, d.* FROM todolist AS t "
            "LEFT JOIN diagnostics AS d ON d.priority = t.priority"
        )
        return {r["starid"]: dict(r) for r in rows}
    finally:
        con.close()


def _lightcurve(run: dict, starid: int) -> Path:
    return lightcurve_path(run["output"], starid, 1, 1, 4, 1800, 30, 1)


def test_every_task_has_a_result(photometry_run):
    diagnostics = _diagnostics(photometry_run["todo"])
    statuses = {d["status"] for d in diagnostics.values()}
    assert None not in statuses
    assert statuses <= {STATUS.OK, STATUS.WARNING, STATUS.SKIPPED}
    assert photometry_run["report"].failed == 0
    for d in diagnostics.values():
        if d["status"] in (STATUS.OK, STATUS.WARNING):
            assert d["lightcurve"] and d["mask_size"] >= 1 and d["method_used"] == "aperture"
            assert np.isfinite(d["mean_flux"]) and np.isfinite(d["rms_hour"])
            assert d["stamp_width"] >= 1 and d["stamp_height"] >= 1  # clipped at the edge
    for star in ("A", "B"):  # well inside: at least the original's smallest stamp
        d = diagnostics[photometry_run[star][0]]
        assert d["stamp_width"] >= 15 and d["stamp_height"] >= 15


def test_isolated_star_flux_matches_truth_times_enclosed_fraction(photometry_run):
    """TIC A (Tmag 10, isolated): FLUX_RAW = true flux x mean PRF fraction inside the
    aperture plus the mean light of faint neighbours (the motion correction takes out the
    changes of both with the pointing), within the noise."""
    starid = photometry_run["A"][0]
    truth = read_truth(photometry_run["truth"])
    with fits.open(_lightcurve(photometry_run, starid)) as hdul:
        data = hdul["LIGHTCURVE"].data
        aperture = hdul["APERTURE"].data
        header = hdul["APERTURE"].header
        flux = np.asarray(data["FLUX_RAW"], dtype=float)
        flux_err = np.asarray(data["FLUX_RAW_ERR"], dtype=float)
        cadenceno = np.asarray(data["CADENCENO"])
    origin = (
        header["CRVAL2P"] - FIRST_SCIENCE_CCD_ROW,
        header["CRVAL1P"] - FIRST_SCIENCE_CCD_COLUMN,
    )
    mask = (aperture & ApertureBits.PHOTOMETRIC) != 0
    assert mask.sum() >= 4
    prf = AnalyticPRF()
    stars = truth["stars"]
    k = np.searchsorted(truth["ffiindex"], cadenceno)
    assert np.array_equal(truth["ffiindex"][k], cadenceno)
    expected = np.empty(k.size)
    target = int(np.flatnonzero(stars["starid"] == starid)[0])
    fraction = np.empty(k.size)
    for j, kk in enumerate(k):
        image = prf.render(
            truth["row"][kk],
            truth["col"][kk],
            truth["flux"][kk],
            mask.shape,
            origin,
            node_rows=stars["row"],
            node_cols=stars["col"],
        )
        expected[j] = image[mask].sum()
        alone = prf.render(
            [truth["row"][kk, target]], [truth["col"][kk, target]], [1.0], mask.shape, origin
        )
        fraction[j] = alone[mask].sum()
    own = truth["flux"][k, target] * fraction
    assert 0.85 < np.median(fraction) < 1.0
    assert np.median((expected - own) / own) < 0.02  # isolated: neighbours add < 2 %
    # What the motion-corrected flux should be: the aperture's mean level, without the
    # pointing's changes of the light collected.
    good = np.isfinite(flux)
    expected_raw = expected
    expected = truth["flux"][k, target] * fraction[good].mean() + (expected - own)[good].mean()
    raw_scatter = np.std((flux - expected_raw)[good] / flux_err[good])
    pull = (flux - expected) / flux_err
    # Within the noise: no bias beyond 3 sigma of the mean, scatter as the errors say.
    ratio = flux / expected
    ratio_error = np.std(ratio) / np.sqrt(ratio.size)  # of the mean ratio
    print(
        f"TIC {starid}: flux/expected {np.mean(ratio):.6f} +- {ratio_error:.1e}, pull mean "
        f"{np.mean(pull):.2f} std {np.std(pull):.2f} (against the uncorrected aperture sum "
        f"{raw_scatter:.2f}), enclosed {np.median(fraction):.3f}"
    )
    assert abs(np.mean(pull)) < 3.0 / np.sqrt(pull.size)
    assert abs(np.mean(ratio) - 1) < 3.0 * ratio_error
    assert ratio_error < 1e-4  # the noise allows ~0.01 %: the check above is that tight
    assert 0.6 < np.std(pull) < 1.5


def test_isolated_star_noise_is_near_the_expected_noise(photometry_run):
    starid = photometry_run["A"][0]
    truth = read_truth(photometry_run["truth"])
    target = int(np.flatnonzero(truth["stars"]["starid"] == starid)[0])
    d = _diagnostics(photometry_run["todo"])[starid]
    attrs = truth["attrs"]
    star = truth["stars"][target]
    origin = np.asarray(attrs["region"])[[0, 2]]
    background = truth["background"][:, int(star["row"] - origin[0]), int(star["col"] - origin[1])]
    noise = expected_noise(
        flux=d["mean_flux"],
        n_pix=d["mask_size"],
        background=float(np.mean(background)),
        exposure_time=float(attrs["exposure_time"]),
        n_frames=float(attrs["num_coadded"]),
        cadence=1800.0,
        read_noise=float(np.mean(attrs["read_noise"])),
        components=True,
    )
    limit = np.sqrt(noise["shot"] ** 2 + noise["sky"] ** 2 + noise["read"] ** 2)
    measured = d["rms_hour"] * 1e6
    print(f"TIC {starid}: rms_hour {measured:.0f} ppm, expected {limit:.0f} ppm")
    if truth["signals"][target]["kind"] == 0:  # constant: the light curve is the noise
        assert measured < 1.3 * limit
    score = next(s for s in score_sector(photometry_run["folder"]).stars if s.starid == starid)
    assert score.ratio < 1.3
    assert abs(score.flux_fraction - 0.95) < 0.05


def test_faint_star_in_bright_mask_is_skipped(photometry_run):
    bright, faint = photometry_run["B"][0], photometry_run["C"][0]
    diagnostics = _diagnostics(photometry_run["todo"])
    assert diagnostics[bright]["status"] == STATUS.OK
    assert diagnostics[faint]["status"] == STATUS.SKIPPED
    con = sqlite3.connect(photometry_run["todo"])
    try:
        pairs = con.execute(
            "SELECT a.starid, b.starid FROM photometry_skipped AS s "
            "JOIN todolist AS a ON a.priority = s.priority "
            "JOIN todolist AS b ON b.priority = s.skipped_by"
        ).fetchall()
    finally:
        con.close()
    assert (faint, bright) in pairs
    assert not _lightcurve(photometry_run, faint).exists()
    # B's contamination counts C's light.
    assert 0 < diagnostics[bright]["contamination"] < 0.01


def test_light_curve_file_read_by_lightkurve(photometry_run):
    lightkurve = pytest.importorskip("lightkurve")
    starid = photometry_run["A"][0]
    path = _lightcurve(photometry_run, starid)
    assert path.name == f"tess{starid:011d}-s001-1-4-c1800-dr30-v01-tasoc_lc.fits.gz"
    assert path.parent == photometry_run["output"] / "c1800" / f"{starid:011d}"[:5]
    diagnostics = _diagnostics(photometry_run["todo"])[starid]
    assert diagnostics["lightcurve"] == str(path.relative_to(photometry_run["folder"]))
    with fits.open(path) as hdul:
        data = hdul["LIGHTCURVE"].data
        flux = np.asarray(data["FLUX_RAW"])
        time = np.asarray(data["TIME"])
        quality = np.asarray(data["QUALITY"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc = lightkurve.TessLightCurve.read(str(path), format="tasoc", flux_column="flux_raw")
        from lightkurve.io.tasoc import read_tasoc_lightcurve

        lc2 = read_tasoc_lightcurve(str(path), flux_column="flux_raw", quality_bitmask="none")
    assert lc.meta["TICID"] == starid and lc.meta["ORIGIN"] == "tessphot"
    np.testing.assert_allclose(lc.flux.value, flux)
    np.testing.assert_allclose(lc.time.value, time)
    np.testing.assert_array_equal(lc2.quality.value, quality)
    assert lc.time.format == "btjd"
    # TIME is the star's own barycentric time: the simulated observer (the geocentre) at the
    # spacecraft time, plus astropy's light travel time to the star, which differs from the
    # FFI's (CCD-centre) correction by far more than the 20 us allowed (astropy leaves out
    # the Shapiro delay, < 7 us).
    data = ffi_source(photometry_run["folder"], 1, 1, 4, 19.0)
    star = data.catalog[data.stars.index[data.star(starid)]]
    spacecraft = data.time - data.timecorr
    geocentre = EarthLocation.from_geocentric(0.0, 0.0, 0.0, unit="m")
    travel = (
        Time(spacecraft + BTJD_OFFSET, format="jd", scale="tdb", location=geocentre)
        .light_travel_time(SkyCoord(star["ra"], star["decl"], unit="deg"), kind="barycentric")
        .to_value("day")
    )
    ok = np.isfinite(time)
    error_s = np.abs(time - (spacecraft + travel))[ok] * 86400
    shift_s = np.abs(travel - data.timecorr)[ok] * 86400
    print(
        f"TIME vs astropy: max {error_s.max() * 1e6:.1f} us; CCD-centre shift {shift_s.min():.4f} s"
    )
    assert error_s.max() < 2e-5 and shift_s.min() > 1e-3


def test_checksums_verify(photometry_run):
    """Every HDU carries CHECKSUM and DATASUM, and both verify (a bad one only warns in
    astropy: warnings are errors here, and each HDU is verified explicitly)."""
    path = _lightcurve(photometry_run, photometry_run["A"][0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(path, checksum=True) as hdul:
            hdul.verify("exception")
            for hdu in hdul:
                assert "CHECKSUM" in hdu.header and "DATASUM" in hdu.header, hdu.name
                assert hdu.verify_checksum() == 1 and hdu.verify_datasum() == 1, hdu.name


def test_damaged_checksum_is_detected(photometry_run, tmp_path):
    """The check above can fail: one changed flux value breaks the LIGHTCURVE checksum."""
    path = _lightcurve(photometry_run, photometry_run["A"][0])
    with fits.open(path) as hdul:
        hdul["LIGHTCURVE"].data["FLUX_RAW"][3] += 1.0
        hdul.writeto(tmp_path / "changed.fits", output_verify="ignore", checksum=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(tmp_path / "changed.fits") as hdul:
            assert hdul["LIGHTCURVE"].verify_datasum() == 0


def test_every_tunable_in_the_header(photometry_run):
    from tessphot.photometry.aperture import AperturePhotometry

    starid = photometry_run["A"][0]
    path = _lightcurve(photometry_run, starid)
    with fits.open(path) as hdul:
        header = hdul[0].header
        aperture = hdul["APERTURE"].data
    settings = settings_from_header(header)
    from tessphot.config.k2p2 import K2P2Settings
    from tessphot.config.photometry import PhotometrySettings

    for name in PhotometrySettings.keys():
        assert f"photometry.{name}" in settings
    for name in K2P2Settings.__dataclass_fields__:
        assert f"k2p2.{name}" in settings
    assert header["PHOTMET"] == "aperture" and header["KP_THRES"] == 0.8
    assert 0 <= header["AP_CONT"] < 0.1 and header["AP_OPTIM"] is True
    # AP_K2PIX counts K2P2's mask, which the optimised aperture is chosen from.
    phot = _method(AperturePhotometry, starid, photometry_run["folder"])
    phot.run()
    photometric = (aperture & ApertureBits.PHOTOMETRIC) != 0
    assert phot.k2p2_mask.shape == photometric.shape
    assert header["AP_K2PIX"] == int(phot.k2p2_mask.sum())
    assert not (photometric & ~phot.k2p2_mask).any()
    assert photometric.sum() <= header["AP_K2PIX"]


def test_precision_score_of_the_small_sector(photometry_run):
    score = score_sector(photometry_run["folder"], photometry_run["output"])
    ratios = [s.ratio for s in score.stars if np.isfinite(s.ratio) and not s.crowded]
    print("isolated ratios:", np.round(sorted(ratios), 2))
    assert len(ratios) >= 8
    assert np.median(ratios) < 1.2


def test_stamp_size_follows_the_original_table():
    assert stamp_size(13.5, 15) == (15, 15)
    assert stamp_size(10.0, 15) == (15, 15)
    h, w = stamp_size(0.0, 15)
    assert h == 2 * (STAMP_HEIGHT[0] // 2) + 1 and w == 159
    for tmag in np.linspace(0, 16, 33):
        h, w = stamp_size(tmag, 15)
        assert h % 2 == 1 and w % 2 == 1 and h >= 15 and w >= 15


def _profile(row: float = 4.0, col: float = 4.0, shape=(9, 9)) -> np.ndarray:
    """A Gaussian star of unit flux."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    profile = np.exp(-((yy - row) ** 2 + (xx - col) ** 2) / (2 * 0.8**2))
    return profile / profile.sum()


def _groups(images: np.ndarray, cadences: int = 60) -> GroupImages:
    return GroupImages(np.asarray(images, dtype=float), np.full(len(images), float(cadences)))


def test_optimal_aperture_keeps_the_core_of_a_faint_star():
    """Sky-limited: the best aperture is the few bright pixels; photon-limited: it grows."""
    profile = _profile()
    candidates = np.ones((9, 9), dtype=bool)
    sky_variance = 100.0

    def best(flux):
        signal = flux * profile
        return optimal_aperture(candidates, signal, signal + sky_variance, None, 2)

    faint, bright = best(50.0), best(1e6)
    assert faint[4, 4] and 1 <= faint.sum() <= 9
    assert bright.sum() > faint.sum()
    # Jitter the photometry does not correct: apertures cutting the profile lose flux when
    # the star moves, so the aperture of a bright star grows further.
    signal = 1e4 * profile
    still = optimal_aperture(candidates, signal, signal + sky_variance, None, 2)
    moved = [1e4 * _profile(4 + dr, 4 + dc) for dr, dc in ((0, 0), (0.4, 0), (0, 0.4), (0.4, 0.4))]
    jittery = optimal_aperture(candidates, signal, signal + sky_variance, _groups(moved), 2)
    assert jittery.sum() > still.sum()


def test_optimal_aperture_ignores_the_stars_own_variability():
    """A variable star: its light changes every aperture alike, so the aperture is the one
    of the same star held constant, even when the variability happens to follow the motion
    (a 5 % signal times the motion). Motion the photometry corrects is not noise."""
    steps = np.linspace(-0.05, 0.05, 8)
    moved = np.array([1e4 * _profile(4 + d, 4) for d in steps])
    signal = moved.mean(axis=0)
    candidates = np.ones((9, 9), dtype=bool)
    variance = signal + 100.0
    varying = (1 + steps)[:, None, None] * moved  # brighter as it moves up
    for corrected in (False, True):
        scene = GroupScene(moved, np.zeros_like(moved), corrected)
        constant = optimal_aperture(candidates, signal, variance, _groups(moved), 2, scene=scene)
        variable = optimal_aperture(candidates, signal, variance, _groups(varying), 2, scene=scene)
        assert np.array_equal(variable, constant)
    still = optimal_aperture(candidates, signal, variance, None, 2, scene=scene)
    assert np.array_equal(variable, still)


def test_optimal_aperture_leaves_out_a_varying_neighbour():
    """A neighbour varying by 5 % in the target's mask: the aperture leaves its light out
    rather than growing to the whole mask (whose flux would carry the neighbour's signal)."""
    shape = (9, 13)
    own = 2e3 * _profile(4, 4, shape)
    neighbour = 2e4 * _profile(4, 9.5, shape)
    candidates = np.ones(shape, dtype=bool)
    variance = own + neighbour + 100.0
    n = 16
    own_g, others_g = np.repeat(own[None], n, 0), np.repeat(neighbour[None], n, 0)
    scene = GroupScene(own_g, others_g, True)
    signal = own + neighbour
    quiet = optimal_aperture(
        candidates, signal, variance, _groups(own_g + others_g), 2, scene=scene
    )
    wave = 1 + 0.05 * np.sin(np.arange(n))
    loud = own_g + wave[:, None, None] * others_g
    chosen = optimal_aperture(candidates, signal, variance, _groups(loud), 2, scene=scene)
    assert chosen[4, 4] and not chosen[4, 9:].any()
    assert chosen.sum() <= quiet.sum() < 30


def test_optimal_aperture_background_errors_do_not_grow_it():
    """Background errors common to the mask's pixels change a large aperture most: they
    must not be read as the star's variability (which would favour the whole mask)."""
    own = 300.0 * _profile()
    candidates = np.ones((9, 9), dtype=bool)
    variance = own + 100.0
    n = 16
    own_g = np.repeat(own[None], n, 0)
    scene = GroupScene(own_g, np.zeros_like(own_g), True)
    still = optimal_aperture(candidates, own, variance, _groups(own_g), 2, scene=scene)
    offsets = 0.5 * np.random.default_rng(3).standard_normal(n)
    shifted = own_g + offsets[:, None, None]
    chosen = optimal_aperture(candidates, own, variance, _groups(shifted), 2, scene=scene)
    assert chosen[4, 4] and chosen.sum() <= still.sum() < 81


@pytest.mark.parametrize("flux", [150.0, 3e3, 1e5])
def test_variability_scale_weighs_pixels_by_their_signal_to_noise(flux):
    """The target's scale per group, with a background tilt along a long mask that the
    fitted offset cannot take: weighted by each pixel's signal-to-noise ratio it errs less
    and is less noisy than weighted alike (``variance`` proportional to the star's light
    gives those weights); a flat background does not bias it at all."""
    shape = (9, 15)
    own = (flux * _profile(4, 3, shape)).ravel()
    variance = own + 100.0
    cols = (np.indices(shape)[1] - 7.0).ravel()
    tilt = 0.03 * cols

    def errors(weights):
        scale = weights @ own
        return abs(weights @ tilt) / scale, np.sqrt(np.sum(weights**2 * variance)) / scale

    snr = variability_weights(own, np.zeros_like(own), variance)
    alike = variability_weights(own, np.zeros_like(own), own)
    (tilt_snr, noise_snr), (tilt_alike, noise_alike) = errors(snr), errors(alike)
    assert tilt_snr < 0.3 * tilt_alike
    assert noise_snr < 1.05 * noise_alike
    assert snr @ own == pytest.approx(1.0)
    assert abs(snr @ np.full(own.size, 0.5)) < 1e-12


def test_a_mask_cut_next_to_the_star_is_reached_beyond():
    """K2P2's watershed gave a faint star 2 of its pixels (a brighter neighbour's light
    rising beside it): the aperture may take back the nearby pixels, and ends up as with a
    whole mask; the pixels where the star's light dominates are told apart."""
    shape = (9, 13)
    own = 200.0 * _profile(4, 4, shape)
    neighbour = 2e4 * _profile(4, 9.5, shape)
    variance = own + neighbour + 100.0
    n = 16
    own_g, others_g = np.repeat(own[None], n, 0), np.repeat(neighbour[None], n, 0)
    scene, groups = GroupScene(own_g, others_g, True), _groups(own_g + others_g)
    cut = np.zeros(shape, dtype=bool)
    cut[4, 4:6] = True
    reached, dominated = beyond_mask(scene, groups, (4, 4), 2)
    assert reached.sum() == 25 and (dominated <= reached).all()
    assert dominated[4, 4] and not (dominated & (neighbour > own)).any()
    assert dominated.sum() > 9
    whole = np.ones(shape, dtype=bool)
    best = optimal_aperture(whole, own, variance, groups, 2, scene=scene)
    within = optimal_aperture(cut, own, variance, groups, 2, scene=scene)
    beyond = optimal_aperture(cut | dominated, own, variance, groups, 2, scene=scene)
    assert within.sum() <= 2 < best.sum()
    assert np.array_equal(beyond, best)


def test_stamp_wcs_points_at_the_target(photometry_run):
    """The SUMIMAGE WCS (the reference WCS shifted to the stamp) puts the target where the
    catalog says, and carries no frame time keywords."""
    from astropy.wcs import WCS

    from tessphot.catalog.sqlite_catalog import CatalogDB

    starid = photometry_run["A"][0]
    with fits.open(_lightcurve(photometry_run, starid)) as hdul:
        header = hdul["SUMIMAGE"].header
    assert "TSTART" not in header and "DATE-OBS" not in header
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(header)
    with CatalogDB(photometry_run["catalog"]) as db:
        star = db.star(starid)
    col, row = wcs.all_world2pix([[star["ra"], star["decl"]]], 0)[0]
    origin = (
        header["CRVAL2P"] - FIRST_SCIENCE_CCD_ROW,
        header["CRVAL1P"] - FIRST_SCIENCE_CCD_COLUMN,
    )
    truth = photometry_run["A"]
    assert abs(row + origin[0] - truth[2]) < 0.05 and abs(col + origin[1] - truth[3]) < 0.05


def test_saturated_star_motion_correction(halo_sector, bright_starid):
    """A saturated star whose bleed stays on the data: its bleed columns keep their charge
    inside the aperture, so the PRF's motion correction holds; the light curve's scatter
    about the truth is no larger with it than without, and within the errors."""
    from tessphot.evaluation.simulate.truth import read_truth
    from tessphot.photometry.aperture import AperturePhotometry

    where, folder = halo_sector
    if where != "centre":
        pytest.skip("the bleed of this star runs off the data")
    truth = read_truth(next((folder / "truth").glob("truth_*.hdf5")))
    index = int(np.flatnonzero(truth["stars"]["starid"] == bright_starid)[0])
    scatter = {}
    for corrected in (True, False):
        settings = {"aperture": {"motion_correction_saturated": corrected}}
        phot = _method(AperturePhotometry, bright_starid, folder, settings)
        phot.run()
        assert phot.motion_corrected == corrected
        lc = phot.columns
        good = phot.target.source.good & np.isfinite(lc.flux)
        true = truth["flux"][np.searchsorted(truth["ffiindex"], lc.cadenceno), index]
        ratio = lc.flux[good] / true[good]
        scatter[corrected] = np.std(ratio / np.median(ratio))
        errors = np.median(lc.flux_err[good] / lc.flux[good])
    print(f"scatter with correction {scatter[True]:.2e}, without {scatter[False]:.2e}")
    assert scatter[True] <= 1.05 * scatter[False]
    assert scatter[True] < 1.5 * errors


def test_cadence_groups_span_at_least_four_hours():
    """Groups long enough that their mean images show slow changes rather than white
    noise: none from 1.7 h of 200-s data, 6 from a day of 30-min data, 16 at most."""
    from tessphot.photometry.aperture_optimal import JITTER_GROUPS, cadence_groups

    for n, cadence, expected in ((30, 200, 1), (48, 1800, 6), (1282, 1800, JITTER_GROUPS)):
        good = np.ones(n, dtype=bool)
        good[::7] = n < 100  # bad cadences belong to no group
        group, n_groups = cadence_groups(good, cadence)
        assert n_groups == min(expected, max(1, int(good.sum()) // math.ceil(4 * 3600 / cadence)))
        assert set(np.unique(group[good])) == set(range(n_groups))
        assert (group[~good] == -1).all()
        assert np.all(np.diff(group[good]) >= 0)  # consecutive


def test_saturation_is_decided_from_the_data(small_sector):
    """Whether a target is saturated comes from its pixels (``saturation_fraction`` of a full
    pixel in the average image), not from its catalogue magnitude: the small sector's
    brightest star (Tmag 9) is not; with a level it reaches, it is, and the motion
    correction then follows ``motion_correction_saturated``."""
    from tessphot.photometry.aperture import AperturePhotometry

    starid = small_sector["B"][0]
    folder = small_sector["folder"]
    plain = _method(AperturePhotometry, starid, folder)
    plain.run()
    assert not plain.saturated and plain.motion_corrected
    peak = float(np.nanmax(plain.target.sumimage[plain.k2p2_mask]))
    settings = {
        "saturation_fraction": 0.5 * peak / SATURATED_RATE,
        "aperture": {"motion_correction_saturated": False},
    }
    low = _method(AperturePhotometry, starid, folder, settings)
    low.run()
    assert low.saturated and not low.motion_corrected and not low.optimised


def test_a_constant_star_whose_core_breathes_keeps_its_wings():
    """A constant star whose PRF width changes by 3 % from group to group (focus): its core
    pixels brighten and dim, which a fitted scale reads as the star's variability, while
    the whole star's light stays the same. Held constant, the slow term sees that a large
    aperture is stable: the aperture is within 5 % of the truly best one (whose noise is
    computed from the groups' fluxes), not twice its noise."""
    shape, n = (11, 11), 16
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]

    def star(width):
        p = np.exp(-((yy - 5) ** 2 + (xx - 5) ** 2) / (2 * width**2))
        return 2e4 * p / p.sum()

    widths = 0.9 * (1 + 0.03 * np.random.default_rng(2).standard_normal(n))
    images = np.array([star(w) for w in widths])
    own, variance = star(0.9), star(0.9) + 50.0
    scene = GroupScene(np.repeat(own[None], n, 0), np.zeros_like(images), True)
    candidates = np.ones(shape, dtype=bool)
    chosen = optimal_aperture(candidates, own, variance, _groups(images), 2, scene=scene)
    order = np.argsort(-(own / variance).ravel(), kind="stable")
    light, var = np.cumsum(own.ravel()[order]), np.cumsum(variance.ravel()[order])
    flux = np.cumsum(images.reshape(n, -1)[:, order], axis=1)
    noise = (var / 2 + flux.var(axis=0)) / light**2
    assert noise[chosen.sum() - 1] < 1.05 * noise.min()


def test_only_targets_claim_the_pixel_they_are_centred_on():
    """A catalogued star fainter than the task list's faint limit has no task: its pixel
    is no one's to keep (without a known limit, every star's is)."""
    catalog = {
        "starid": np.array([1, 2, 3]),
        "row": np.array([4.2, 4.4, 2.6]),
        "column": np.array([4.0, 6.3, 3.9]),
        "tmag": np.array([12.0, 14.0, 16.0]),
    }
    target = SimpleNamespace(starid=1, catalog=catalog, target_limit=None)
    centres = centred_targets(target, (0, 0), (9, 9))
    assert centres[4, 6] == tmag_to_flux(14.0) and centres[3, 4] == tmag_to_flux(16.0)
    assert np.count_nonzero(centres) == 2  # not the target's own pixel
    target.target_limit = 15.0
    centres = centred_targets(target, (0, 0), (9, 9))
    assert centres[4, 6] == tmag_to_flux(14.0) and np.count_nonzero(centres) == 1


def test_a_pixel_another_star_is_centred_on_and_dominates_is_that_stars():
    """A pixel on which another star is centred and whose own light there (its flux times
    the target's peak fraction) exceeds the target's is that star's (in the target's
    aperture it would skip that star when fainter). A faint star centred where the target
    dominates does not claim its pixel, nor does a faint star centred where a third, bright
    star outshines the target: the light of the star centred there counts, not all the
    others'."""
    shape = (9, 13)
    own = 2e3 * _profile(4, 4, shape)
    neighbour = 1e3 * _profile(4, 6, shape) + 20.0 * _profile(3, 4, shape)
    bright = 5e4 * _profile(6.5, 6.5, shape)
    n = 16
    others = neighbour + bright
    scene = GroupScene(np.repeat(own[None], n, 0), np.repeat(others[None], n, 0), True)
    groups = _groups(np.repeat((own + others)[None], n, 0))
    centres = np.zeros(shape)
    centres[4, 6], centres[3, 4], centres[5, 5] = 1e3, 20.0, 5.0
    assert others[5, 5] > own[5, 5]
    theirs = neighbours_own(scene, groups, centres, 2e3)
    assert theirs[4, 6] and not theirs[3, 4] and not theirs[5, 5] and theirs.sum() == 1
