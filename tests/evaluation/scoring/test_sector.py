"""Issue 14's whole-sector scoring: residuals, orbits, the tables, the common mode; and one
small simulated sector scored end to end."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tessphot.evaluation.scoring.optimal import on_region, star_stamp
from tessphot.evaluation.scoring.photometry import find_truth, score_sector
from tessphot.evaluation.scoring.sector import (
    SectorScore,
    TargetScore,
    orbits_of,
    residual,
    score_sector_run,
    score_target,
)
from tessphot.evaluation.scoring.sector_lightcurve import without_motion
from tessphot.evaluation.scoring.sector_report import (
    bin_table,
    common_mode,
    format_markdown,
    group_stats,
    sector_report,
    signals_summary,
    targets_check,
)
from tessphot.evaluation.scoring.sector_truth import read_truth
from tessphot.evaluation.scoring.small_apertures import (
    cube_cadences,
    optimal_sum,
    score_small_apertures,
)
from tessphot.prepare.cube import PreparedCube, hdf5_name


def test_residual_removes_the_true_signal_and_the_dilution():
    """A diluted, scaled sinusoid plus a neighbour's constant light: the residual is the
    noise alone, relative to the target's light."""
    rng = np.random.default_rng(1)
    t = np.arange(500) / 48.0
    true = 1e4 * (1 + 0.02 * np.sin(2 * np.pi * t / 1.3))
    noise = 5.0 * rng.standard_normal(t.size)
    measured = 0.8 * true + 2000.0 + noise  # 80 % enclosed; 2000 e-/s of a neighbour
    contamination = 2000.0 / (0.8 * 1e4 + 2000.0)
    relative, target = residual(measured, true, contamination)
    assert target == pytest.approx(0.8e4, rel=2e-3)
    np.testing.assert_allclose(relative * target, noise - noise.mean(), atol=0.5)
    # A constant star: the residual is the flux about its mean.
    flat, level = residual(np.full(10, 3.0) + np.arange(10), np.full(10, 7.0), math.nan)
    assert level == pytest.approx(7.5)
    np.testing.assert_allclose(flat * level, np.arange(10) - 4.5)


def test_residual_of_a_non_positive_flux_is_nan():
    relative, target = residual(-np.ones(5), np.ones(5), 0.0)
    assert math.isnan(target) and np.isnan(relative).all()


def test_orbits_split_at_gaps():
    t = np.concatenate([np.arange(10) / 48, 1.5 + np.arange(5) / 48])
    np.testing.assert_array_equal(orbits_of(t), [0] * 10 + [1] * 5)
    assert orbits_of(np.arange(3.0) / 48).tolist() == [0, 0, 0]
    assert orbits_of(np.empty(0)).size == 0


def _star(tmag, ratio, *, variable=False, contamination=0.02, npix=10.0, optimal=12.0):
    return TargetScore(
        starid=int(tmag * 1000),
        tmag=tmag,
        status="OK",
        kind="sinusoid" if variable else "constant",
        contamination=contamination,
        mask_size=npix,
        rms_hour=ratio * 1e-3,
        rms_hour_neighbours=ratio * 1.1e-3,
        rms_hour_plain=ratio * 1.05e-3,
        rms_30min=1.3e-3,
        limit_hour=1e-3,
        limit_30min=1.4e-3,
        own_limit_hour=0.9e-3,
        optimal_npix=optimal,
    )


def test_group_statistics():
    stars = [_star(9.5, r) for r in (1.0, 1.1, 1.2, 1.3, 2.0)] + [_star(9.5, math.nan)]
    stars[0].mask_size = 5.0  # under half the optimal 12
    stats = group_stats(stars)
    assert stats["n"] == 5
    assert stats["median"] == pytest.approx(1.2)
    assert stats["p90"] == pytest.approx(np.percentile([1.0, 1.1, 1.2, 1.3, 2.0], 90))
    assert stats["p90_neighbours"] == pytest.approx(1.1 * stats["p90"])
    assert stats["median_30min"] == pytest.approx(1.3 / 1.4)
    assert stats["plain_median"] == pytest.approx(1.2 * 1.05)
    assert stats["own_median"] == pytest.approx(1.2 * 1.05 / 0.9)
    assert stats["small_fraction"] == pytest.approx(1 / 6)
    assert stats["npix"] == 10.0 and stats["optimal_npix"] == 12.0
    assert group_stats([])["n"] == 0 and math.isnan(group_stats([])["median"])


def test_bins_split_kind_and_crowding():
    stars = [
        _star(8.2, 1.0),
        _star(8.7, 1.4, variable=True),
        _star(8.5, 3.0, contamination=0.5),
        _star(12.1, 1.02),
    ]
    score = SectorScore(targets=stars)
    rows = bin_table(score, bins=(8.0, 9.0, 12.0, 13.0))
    assert [(r["tmag"], r["kind"]) for r in rows] == [
        ((8.0, 9.0), "constant"),
        ((8.0, 9.0), "variable"),
        ((12.0, 13.0), "constant"),
    ]
    assert rows[0]["isolated"]["median"] == pytest.approx(1.0)
    assert rows[0]["crowded"]["median"] == pytest.approx(3.0)
    assert rows[1]["isolated"]["median"] == pytest.approx(1.4)
    signals = signals_summary(score)
    checks = {c["what"]: c for c in targets_check(rows, signals)}
    constant = checks["isolated constant Tmag 8-14: median <= 1.05 per bin"]
    assert constant["value"] == pytest.approx(1.02) and constant["met"] is True
    variable = checks["isolated variable Tmag 8-14: median <= 1.05 per bin"]
    assert variable["value"] == pytest.approx(1.4) and variable["met"] is False
    assert checks["isolated constant Tmag 6-8: median <= 1.10 per bin"]["met"] is None


def test_common_mode_per_orbit():
    """Twenty stars sharing a slow term, half of it from the background: the median over
    the stars recovers it, per orbit, and correlates with the background part."""
    rng = np.random.default_rng(7)
    t = np.concatenate([np.arange(200) / 48, 14 + np.arange(200) / 48])
    orbit = orbits_of(t)
    slow = np.where(orbit == 0, 0.5, -0.3) * np.sin(2 * np.pi * t / 3)
    drow = 0.05 * np.sin(2 * np.pi * t / 5)[:, None] + 0.01 * rng.standard_normal((t.size, 20))
    dcol = 0.03 * np.cos(2 * np.pi * t / 7)[:, None] + 0.01 * rng.standard_normal((t.size, 20))
    motion = 20 * drow**2 - 10 * dcol  # each star's flux error from its motion
    flux = slow[:, None] + motion + rng.standard_normal((t.size, 20))
    bkg = 0.5 * slow[:, None] + 0.1 * rng.standard_normal((t.size, 20))
    score = SectorScore(
        tmid=t,
        orbit=orbit,
        quiet_flux=flux,
        quiet_background=bkg,
        background_error=np.full((t.size, 20), 0.2),
        background_true=np.full((t.size, 20), 80.0),
        quiet_drow=drow,
        quiet_dcol=dcol,
    )
    mode = common_mode(score)
    assert mode["stars"] == 20 and len(mode["orbits"]) == 2
    first, second = mode["orbits"]
    # The median of 20 unit-noise stars has noise ~0.28: the slow term's rms shows above it.
    assert first["flux"]["rms"] == pytest.approx(math.hypot(0.5 / math.sqrt(2), 0.28), rel=0.2)
    assert second["flux"]["rms"] < first["flux"]["rms"]
    assert first["correlation"] > 0.5 and second["correlation"] > 0.3
    assert first["background_error"]["median"] == pytest.approx(0.2)
    assert first["background_true"] == pytest.approx(80.0)
    assert first["tmid"] == pytest.approx((t[0], t[199]))
    # The slow terms do not average down over an hour; the motion's part goes with the
    # motion fit, half of the common one with the background, all of it with the common mode.
    slow = mode["slow_term"]
    assert slow["white"] == pytest.approx(0.707, abs=1e-3)
    assert slow["as_is"] > slow["own_background_removed"] > slow["common_mode_removed"]
    assert slow["as_is"] > slow["motion_removed"] > slow["background_and_motion_removed"]


def test_motion_fit_leaves_white_noise_alone():
    rng = np.random.default_rng(3)
    drow, dcol = 0.1 * rng.standard_normal(2000), 0.1 * rng.standard_normal(2000)
    noise = rng.standard_normal(2000)
    clean = without_motion(noise + 30 * drow * dcol + 5 * dcol, drow, dcol)
    assert np.std(clean) == pytest.approx(1.0, abs=0.05)
    assert np.corrcoef(clean, noise)[0, 1] > 0.99
    assert np.isnan(without_motion(np.full(5, np.nan), np.zeros(5), np.zeros(5))).all()


def test_report_is_plain_and_prints(tmp_path):
    score = SectorScore(targets=[_star(10.5, 1.1), _star(10.2, 1.3, variable=True)])
    score.targets[1].amplitude_ratio = 0.99
    score.tmid, score.orbit = np.arange(4) / 48, np.zeros(4, dtype=int)
    score.quiet_flux = score.quiet_background = np.zeros((4, 0))
    score.background_error = score.background_true = np.zeros((4, 0))
    score.quiet_drow = score.quiet_dcol = np.zeros((4, 0))
    report = sector_report(score)
    assert report["signals"]["amplitude"]["isolated"] == {
        "n": 1,
        "median": 0.99,
        "p16": 0.99,
        "p84": 0.99,
    }
    assert report["counts"]["tasks"] == 2 and len(report["stars"]) == 2
    text = format_markdown(report)
    assert "| 10-11 | constant | 1 | 1.10 | 1.10 | 1.21 | 0.93 | 1.16 | 1.28 |" in text
    assert "| 10-11 | variable | 1 | 1.30 |" in text
    assert "Sinusoid amplitudes recovered (isolated): median 0.990" in text


@pytest.fixture(scope="module")
def scored_run(small_sector, tmp_path_factory):
    """The small sector with every task run (a copy)."""
    from tessphot.runner.loop import run_photometry

    folder = tmp_path_factory.mktemp("sector_score")
    for name in ("catalog", "prepared", "todo"):
        shutil.copy2(small_sector[name], folder / Path(small_sector[name]).name)
    shutil.copytree(small_sector["folder"] / "truth", folder / "truth")
    run_photometry(folder, folder / "lightcurves", run_all=True)
    return folder


def test_small_sector_scored_end_to_end(scored_run):
    score = score_sector_run(scored_run, scored_run / "lightcurves")
    scored = [s for s in score.targets if math.isfinite(s.rms_hour)]
    assert len(scored) >= 20
    # Today's yardstick is the one of the precision benchmark, star by star (which leaves
    # the neighbours' variable light in).
    today = {s.starid: s.ratio for s in score_sector(scored_run, scored_run / "lightcurves").stars}
    alone = [s for s in scored if s.rms_hour_neighbours == s.rms_hour]
    assert len(alone) >= 10
    for s in alone:
        assert s.own_ratio_hour == pytest.approx(today[s.starid], rel=1e-3)
    # No aperture does better than the optimal one: the isolated stars' own limits are
    # not below it (but for 2 %: the own limit takes the measured flux and the sky at the
    # star, the optimal one the true flux and the sky of every pixel).
    isolated = [s for s in scored if not s.crowded]
    assert all(s.limit_hour <= s.own_limit_hour * 1.02 for s in isolated)
    assert 0.8 < np.median([s.ratio_hour for s in isolated]) < 1.5
    # Every cadence of the window is good (no flag) and counted.
    assert {s.n_good for s in scored} == {48} and min(s.n_finite for s in scored) >= 46
    assert score.quiet_flux.shape[0] == 48 and score.quiet_flux.shape[1] >= 1
    assert format_markdown(sector_report(score)).count("\n") > 10
    # Every scored star also has its rms with the neighbours' variable light left in.
    assert all(math.isfinite(s.rms_hour_neighbours) for s in scored)
    # The optimal apertures are found among the simulated data's pixels.
    truth = read_truth(find_truth(scored_run), np.array([s.starid for s in scored]))
    r0, r1, c0, c1 = truth.region
    assert r1 > r0 and c1 > c0
    assert np.all((truth.row > r0 - 1) & (truth.row < r1) & (truth.col > c0 - 1) & (truth.col < c1))


def test_optimal_aperture_summed_on_the_prepared_images(scored_run):
    """The S/N-optimal aperture's plain sum holds the star's true light (plus its
    neighbours'), and scored as a light curve (corrected for the true motion) it is near
    the pipeline's own. The pipeline's aperture, summed and corrected alike, is no worse
    than the optimal one when it is the optimal one."""
    score = score_sector_run(scored_run, scored_run / "lightcurves")
    scored = [s for s in score.targets if math.isfinite(s.rms_hour) and not s.crowded]
    starids = np.array([s.starid for s in scored])
    truth = read_truth(find_truth(scored_run), starids, neighbours=True, scene=True)
    index = {int(s): i for i, s in enumerate(truth.starid)}
    paths = {int(p.name[4:15]): p for p in (scored_run / "lightcurves").rglob("*.fits.gz")}
    stars = [
        (index[s.starid], s, score_target(truth, index[s.starid], paths[s.starid], s))
        for s in scored
        if s.starid in index
    ][:8]
    with PreparedCube(scored_run / hdf5_name(*truth.ccd)) as cube:
        in_cube = cube_cadences(cube, truth)
        for i, s, res in stars:
            flux, rows, cols, light = optimal_sum(cube, truth, i, res.cadences, in_cube)
            assert np.isfinite(flux).all()
            # Isolated: no other target takes a pixel of the optimal aperture.
            assert rows.size == s.optimal_npix
            # Isolated: the aperture's flux is the star's light, within its contamination.
            assert light <= np.median(flux) * 1.02
            assert np.median(flux) <= light / (1 - max(s.contamination, 0.0)) * 1.1
            if i == stars[0][0]:
                optimal_pixels = (rows, cols)
    # The first star's light curve given the optimal aperture's pixels.
    first = stars[0]
    stars[0] = (first[0], first[1], replace(first[2], mask=optimal_pixels))
    score_small_apertures(scored_run, truth, stars)
    for _, s, _ in stars:
        assert 0.5 < s.optimal_ap_rms_hour / s.rms_hour < 2.0
        assert math.isfinite(s.optimal_ap_rms_hour_neighbours)
        assert 0.5 < s.optimal_ap_std_hour_neighbours / s.std_hour_neighbours < 2.0
        assert math.isfinite(s.optimal_ap_excess_sigma)
        assert math.isfinite(s.own_ap_excess_sigma)
    assert stars[0][1].own_ap_excess_sigma == 0.0
    # Without the truth's scene there is no ideal motion correction to give.
    with pytest.raises(ValueError, match="scene"):
        score_small_apertures(scored_run, replace(truth, scene=None), stars[:1])


def test_a_pixel_another_target_is_centred_on_and_outshines_is_yielded(scored_run):
    """The comparison aperture leaves a brighter target's centre pixel to it, and keeps a
    faint one's where the target outshines it."""
    score = score_sector_run(scored_run, scored_run / "lightcurves")
    truth = read_truth(find_truth(scored_run), np.array([s.starid for s in score.targets]))
    i, j = 0, 1
    row, col = np.array(truth.row, dtype=float), np.array(truth.col, dtype=float)
    row[j], col[j] = row[i] + 1.0, col[i]  # j centred one pixel below i
    flux = np.array(truth.flux, dtype=float)
    for factor, yielded in ((10.0, True), (0.01, False)):
        flux[:, j] = flux[:, i] * factor
        moved = replace(truth, row=row, col=col, flux=flux)
        mean = moved.mean_flux(i)
        image, origin = on_region(*star_stamp(moved.prf, row[i], col[i], mean), moved.region)
        taken = moved.yielded_pixels(i, image, origin)
        at = (int(np.floor(row[j] + 0.5)) - origin[0], int(np.floor(col[j] + 0.5)) - origin[1])
        assert taken[at] == yielded and taken.sum() == int(yielded)
        best, rows, cols = moved.optimal_aperture(i, yielding=True)
        held = set(zip(rows[best.mask].tolist(), cols[best.mask].tolist(), strict=True))
        pixel = (at[0] + origin[0], at[1] + origin[1])
        assert (pixel in held) != yielded
        # Without yielding, the pixel next to the target's centre is always its.
        best, rows, cols = moved.optimal_aperture(i)
        assert pixel in set(zip(rows[best.mask].tolist(), cols[best.mask].tolist(), strict=True))
