"""The simulator is honest: its images agree with its truth and with SPOC's format.

These are the acceptance checks of the simulator: if they fail, every precision number
measured on simulated data is suspect.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time

from tessphot.constants import SCIENCE_COLUMN_OFFSET, tmag_to_flux
from tessphot.evaluation.simulate.detector import FULL_WELL
from tessphot.evaluation.simulate.sector import simulate_sector
from tessphot.io import parse_ffi_name, read_ffi
from tessphot.prf import load_prf

REQUIRED_KEYWORDS = (
    "TSTART",
    "TSTOP",
    "DATE-OBS",
    "DATE-END",
    "FFIINDEX",
    "DQUALITY",
    "BARYCORR",
    "CAMERA",
    "CCD",
    "DATA_REL",
    "PROCVER",
    "NUM_FRM",
    "NREADOUT",
    "CRMITEN",
    "CRBLKSZ",
    "EXPOSURE",
    "GAINA",
    "GAINB",
    "GAINC",
    "GAIND",
    "READNOIA",
    "READNOIB",
    "READNOIC",
    "READNOID",
    "CRVAL1P",
    "CRVAL2P",
    "A_ORDER",
    "BP_ORDER",
)


def test_crop_opens_as_spoc_ffi(sim_real_prf):
    sim = sim_real_prf
    assert len(sim.ffis) == sim.config.cadences
    name = parse_ffi_name(sim.ffis[0])
    assert (name.sector, name.camera, name.ccd) == (1, 1, 4)
    ffi = read_ffi(sim.ffis[0])
    assert ffi.data.shape == (128, 128)
    assert ffi.origin == (600, 700)
    assert ffi.ccd_origin == (601, 745)
    assert np.isfinite(ffi.uncertainty).all()
    with fits.open(sim.ffis[0]) as hdul:
        assert len(hdul) == 3
        merged = hdul[0].header.copy()
        merged.update(hdul[1].header)
        for key in REQUIRED_KEYWORDS:
            assert key in merged, key
        assert hdul[1].header["CTYPE1"] == "RA---TAN-SIP"
        assert hdul[0].header["ORIGIN"] == "tessphot"
        assert hdul[0].header["PROCVER"].startswith("tessphot-")
        assert hdul[1].header["SIMPRF"].startswith("SPOC")
        assert hdul[1].header["NUM_FRM"] == 900 and hdul[1].header["NREADOUT"] == 720
        assert hdul[1].header["EXPOSURE"] * 86400 == pytest.approx(720 * 1.98)
        # Image-HDU times are barycentric: TJD stamps plus BARYCORR.
        dt = hdul[1].header["TSTART"] - hdul[0].header["TSTART"]
        assert dt == pytest.approx(hdul[1].header["BARYCORR"], abs=1e-9)
        assert abs(hdul[1].header["BARYCORR"]) < 0.006
        # DATE-OBS is the UTC calendar date of the (spacecraft) exposure start.
        t = Time(hdul[0].header["TSTART"] + 2457000, format="jd", scale="tdb").utc
        obs = Time(hdul[0].header["DATE-OBS"].rstrip("Z"), format="isot", scale="utc")
        assert abs((obs - t).sec) < 0.01
    # Cadence numbers continue the real sector-1 sequence (first FFIINDEX 4697).
    assert [read_ffi(p).cadenceno for p in sim.ffis[:3]] == [4697, 4698, 4699]


def test_full_frame_layout(tmp_path):
    """A full frame: 2136x2078 image HDU, science area at rows 0:2048, columns 44:2092."""
    result = simulate_sector(
        _config(sector=27, camera=2, ccd=3, cadences=1, stars=3000, bright=1, seed=3),
        tmp_path,
        progress=False,
    )
    path = result["ffis"][0]
    with fits.open(path) as hdul:
        assert hdul[1].data.shape == (2078, 2136)
        assert hdul[2].data.shape == (2078, 2136)
        assert hdul[1].header["CRVAL1P"] == 1 and hdul[1].header["CRVAL2P"] == 1
        assert hdul[1].header["NUM_FRM"] == 300  # 600-s cadence from sector 27
        collateral = hdul[1].data[:, :SCIENCE_COLUMN_OFFSET]
        virtual_rows = hdul[1].data[2048:, :]
    ffi = read_ffi(path)
    assert ffi.data.shape == (2048, 2048) and ffi.origin == (0, 0)
    # Collateral pixels carry zero-mean bias-level noise, far below the sky.
    assert abs(np.mean(collateral)) < 0.05 and 0.05 < np.std(collateral) < 0.5
    assert abs(np.mean(virtual_rows)) < 0.05
    assert np.median(ffi.data) > 20


def _config(**kw):
    from tessphot.config.simulate import SimulationConfig

    return SimulationConfig(**kw)


def _measured_centroid(image, row, col, half=2):
    r, c = int(round(row)), int(round(col))
    cut = image[r - half : r + half + 1, c - half : c + half + 1]
    yy, xx = np.mgrid[r - half : r + half + 1, c - half : c + half + 1]
    w = np.clip(cut, 0, None)
    return (w * yy).sum() / w.sum(), (w * xx).sum() / w.sum()


def test_catalog_positions_match_centroids(sim_real_prf, isolated):
    """Catalogue (J2000 + proper motion) through each frame's WCS lies within 0.1 px of the
    measured centroid of isolated bright stars."""
    from astropy.table import Table

    sim = sim_real_prf
    truth = sim.truth_arrays()
    stars = truth["stars"]
    catalog = Table.read(sim.catalog, format="ascii.csv")
    r0, r1, c0, c1 = truth["attrs"]["region"]
    sel = isolated(stars, (r0, r1, c0, c1), (8.0, 12.5))
    assert sel.size >= 5
    # Propagate the catalogue from J2000 to the sector reference epoch (as the catalog stage).
    from tessphot.sectors import sector_info

    years = Time(sector_info(1).reference_time, format="jd").jyear - 2000.0
    cat = {row["ID"]: row for row in catalog}
    errors = []
    for k, ffi in enumerate(sim.frames()[::8]):
        k *= 8
        bkg = truth["background"][k]
        image = ffi.data - bkg
        for i in sel:
            row = cat[stars["starid"][i]]
            dec = row["dec"] + row["pmDEC"] * years / 3.6e6
            ra = row["ra"] + row["pmRA"] * years / 3.6e6 / np.cos(np.radians(dec))
            x, y = ffi.wcs.all_world2pix([[ra, dec]], 0)[0]
            mr, mc = _measured_centroid(image, y, x)
            errors.append(np.hypot(mr - y, mc - x))
            # And the truth position agrees with the WCS projection.
            tr = truth["row"][k, i] - ffi.origin[0]
            tc = truth["col"][k, i] - ffi.origin[1]
            assert np.hypot(tr - y, tc - x) < 0.01
    errors = np.array(errors)
    print(
        f"\nWCS vs centroid: {sel.size} stars, max {errors.max():.3f} px, "
        f"median {np.median(errors):.3f} px"
    )
    assert np.max(errors) < 0.1, errors


def test_large_aperture_flux_matches_truth_over_sector(sim_full_sector, isolated):
    """Over a whole sector, the flux in a large aperture equals the injected flux within 1 %.

    The aperture (15x15 px) holds the whole PRF footprint whatever the jitter; the light the
    neighbours put into it (rendered from the truth) is subtracted.
    """
    sim = sim_full_sector
    truth = sim.truth_arrays()
    stars = truth["stars"]
    r0, r1, c0, c1 = truth["attrs"]["region"]
    prf = load_prf(None, 1, 4, 2)
    assert len(sim.ffis) > 1200  # a whole 1800-s sector
    half = 7
    sel = isolated(stars, (r0, r1, c0, c1), (6.5, 10.5), half=half, max_contamination=0.05)
    assert sel.size >= 2
    ratios = {i: [] for i in sel}
    for k, path in enumerate(sim.ffis):
        ffi = read_ffi(path)
        image = ffi.data - truth["background"][k]
        for i in sel:
            r = int(round(stars["row"][i])) - half
            c = int(round(stars["col"][i])) - half
            box = image[
                r - ffi.origin[0] : r - ffi.origin[0] + 2 * half + 1,
                c - ffi.origin[1] : c - ffi.origin[1] + 2 * half + 1,
            ]
            others = np.arange(stars.size) != i
            neighbours = prf.render(
                truth["row"][k, others],
                truth["col"][k, others],
                truth["flux"][k, others],
                box.shape,
                (r, c),
                node_rows=stars["row"][others],
                node_cols=stars["col"][others],
            ).sum()
            ratios[i].append((box.sum() - neighbours) / truth["flux"][k, i])
    for i, values in ratios.items():
        values = np.array(values)
        print(
            f"\nTmag {stars['tmag'][i]:.1f}: 15x15 px sum / true flux over {values.size} "
            f"cadences = {np.mean(values):.5f} (rms {np.std(values):.5f}, "
            f"worst cadence {np.max(np.abs(values - 1)):.5f})"
        )
        assert abs(np.mean(values) - 1) < 0.01, (stars["tmag"][i], np.mean(values))


def test_saturated_star_bleeds_and_conserves_flux(sim_real_prf, prf_dir):
    sim = sim_real_prf
    prf = load_prf(prf_dir, 1, 1, 4)
    truth = sim.truth_arrays()
    stars = truth["stars"]
    bright = np.flatnonzero(stars["tmag"] < 6.5)
    assert bright.size >= 2
    ffi = read_ffi(sim.ffis[0])
    image = ffi.data - truth["background"][0]
    saturation_rate = FULL_WELL / 1.98
    for i in bright:
        r = int(round(truth["row"][0, i])) - ffi.origin[0]
        c = int(round(truth["col"][0, i])) - ffi.origin[1]
        column = ffi.data[:, c]
        saturated = np.flatnonzero(column > 0.95 * saturation_rate)
        assert saturated.size > 3, "a bright star must saturate and bleed along its column"
        assert saturated.min() <= r <= saturated.max()
        # Charge bleeds along columns only: saturated pixels stay within the PRF core's
        # columns, and the star's own column has the longest bleed.
        sat_rows, sat_cols = np.nonzero(ffi.data > 0.95 * saturation_rate)
        mine = (np.abs(sat_rows - r) < 80) & (np.abs(sat_cols - c) < 12)
        assert np.all(np.abs(sat_cols[mine] - c) <= 3)
        lengths = [np.sum(ffi.data[:, c + dc] > 0.95 * saturation_rate) for dc in range(-3, 4)]
        assert np.argmax(lengths) == 3
        # Charge is conserved: a box over the whole bleed holds the injected flux.
        lo, hi = max(saturated.min() - 8, 0), min(saturated.max() + 9, image.shape[0])
        if lo == 0 or hi == image.shape[0]:
            continue  # the bleed leaves the crop: charge is lost to pixels outside it
        box = image[lo:hi, max(c - 8, 0) : c + 9]
        # Without saturation the same box would receive this much light from all stars.
        unsaturated = prf.render(
            truth["row"][0],
            truth["col"][0],
            truth["flux"][0],
            box.shape,
            (ffi.origin[0] + lo, ffi.origin[1] + max(c - 8, 0)),
            node_rows=stars["row"],
            node_cols=stars["col"],
        )
        print(
            f"\nTmag {stars['tmag'][i]:.2f}: bleed {saturated.size} px, box sum / injected "
            f"= {box.sum() / unsaturated.sum():.5f}"
        )
        assert box.sum() == pytest.approx(unsaturated.sum(), rel=0.005)


def test_blank_sky_noise_matches_prediction(sim_real_prf, prf_dir):
    """Scatter of star-free pixels around the true sky = shot + read noise within 5 %."""
    sim = sim_real_prf
    truth = sim.truth_arrays()
    stars = truth["stars"]
    r0, r1, c0, c1 = truth["attrs"]["region"]
    rows, cols = np.mgrid[r0:r1, c0:c1]
    # Blank sky: the light of all stars (rendered from the truth) is below 10 % of the sky
    # noise (their photon noise is then negligible; their mean light is subtracted), and the
    # pixel is away from the bleed columns of saturated stars.
    starlight = load_prf(prf_dir, 1, 1, 4).render(
        truth["row"][0],
        truth["col"][0],
        truth["flux"][0],
        rows.shape,
        (r0, c0),
        node_rows=stars["row"],
        node_cols=stars["col"],
    )
    mask = starlight < 0.1 * 0.35
    for s in stars[stars["tmag"] < 7]:
        mask &= np.abs(cols - s["col"]) > 6
    assert mask.sum() > 150  # x 40 cadences: the std is known to ~1 %
    pulls = []
    for k, path in enumerate(sim.ffis):
        with fits.open(path) as hdul:
            h = hdul[1].header
            t_exp = h["EXPOSURE"] * 86400
            n_frames = h["NREADOUT"]
            read_noise = np.array([h[f"READNOI{o}"] for o in "ABCD"])
        ffi = read_ffi(path)
        sky = truth["background"][k]
        output = np.clip(cols // 512, 0, 3)
        sigma = np.sqrt(sky * t_exp + n_frames * read_noise[output] ** 2) / t_exp
        pulls.append(((ffi.data - sky - starlight) / sigma)[mask])
    pulls = np.concatenate(pulls)
    print(
        f"\nblank sky: {mask.sum()} px x {len(sim.ffis)} cadences, scatter / prediction = "
        f"{np.std(pulls):.4f}, mean {np.mean(pulls):+.4f} sigma"
    )
    assert np.std(pulls) == pytest.approx(1.0, abs=0.05)
    assert abs(np.mean(pulls)) < 0.05


def test_truth_reproduces_images(sim_real_prf, prf_dir):
    """Images = PRF x true fluxes at the true positions + true sky, up to the noise."""
    sim = sim_real_prf
    truth = sim.truth_arrays()
    stars = truth["stars"]
    prf = load_prf(prf_dir, 1, 1, 4)
    r0, r1, c0, c1 = truth["attrs"]["region"]
    saturated_cols = np.unique(np.round(stars["col"][stars["tmag"] < 7.5]).astype(int))
    keep = np.ones((r1 - r0, c1 - c0), dtype=bool)
    for c in saturated_cols:
        keep[:, max(c - 4 - c0, 0) : max(c + 5 - c0, 0)] = False
    for k in (0, len(sim.ffis) // 2, len(sim.ffis) - 1):
        ffi = read_ffi(sim.ffis[k])
        model = (
            prf.render(
                truth["row"][k],
                truth["col"][k],
                truth["flux"][k],
                (r1 - r0, c1 - c0),
                (r0, c0),
                node_rows=stars["row"],
                node_cols=stars["col"],
            )
            + truth["background"][k]
        )
        pulls = ((ffi.data - model) / ffi.uncertainty)[keep]
        print(
            f"\ncadence {k}: (image - truth model) / uncertainty: std {np.std(pulls):.4f}, "
            f"mean {np.mean(pulls):+.4f}"
        )
        assert np.std(pulls) == pytest.approx(1.0, abs=0.05)
        assert abs(np.mean(pulls)) < 0.05


def test_jitter_moves_stars_as_recorded(sim_real_prf, isolated):
    """Measured centroid shifts between frames follow the recorded jitter."""
    sim = sim_real_prf
    truth = sim.truth_arrays()
    stars = truth["stars"]
    sel = isolated(stars, tuple(truth["attrs"]["region"]), (7.5, 11.0))
    frames = sim.frames()
    shifts = []
    for k in range(len(frames)):
        image = frames[k].data - truth["background"][k]
        d = [
            np.subtract(
                _measured_centroid(image, stars["row"][i] - 600, stars["col"][i] - 700),
                (stars["row"][i] - 600, stars["col"][i] - 700),
            )
            for i in sel
        ]
        shifts.append(np.mean(d, axis=0))
    shifts = np.array(shifts)
    measured = shifts - shifts.mean(axis=0)
    recorded = truth["jitter"][:, :2] - truth["jitter"][:, :2].mean(axis=0)
    assert np.std(recorded) > 0.005  # there is jitter to see
    print(
        f"\njitter: recorded rms {np.std(recorded):.4f} px, measured - recorded rms "
        f"{np.sqrt(np.mean((measured - recorded) ** 2)):.4f} px"
    )
    assert np.sqrt(np.mean((measured - recorded) ** 2)) < 0.01


def test_deterministic_for_a_seed(tmp_path):
    a = simulate_sector(
        _config(size=32, cadences=3, stars=20, seed=5, compress=False),
        tmp_path / "a",
        progress=False,
    )
    b = simulate_sector(
        _config(size=32, cadences=3, stars=20, seed=5, compress=False),
        tmp_path / "b",
        progress=False,
    )
    c = simulate_sector(
        _config(size=32, cadences=3, stars=20, seed=6, compress=False),
        tmp_path / "c",
        progress=False,
    )
    for pa, pb in zip(a["ffis"], b["ffis"], strict=True):
        assert pa.name == pb.name
        np.testing.assert_array_equal(fits.getdata(pa, 1), fits.getdata(pb, 1))
    assert a["catalog"].read_text() == b["catalog"].read_text()
    assert not np.array_equal(fits.getdata(a["ffis"][0], 1), fits.getdata(c["ffis"][0], 1))


def test_magnitude_distribution(tmp_path):
    """Star counts rise about 10^(0.3 Tmag) between Tmag 6 and 17."""
    from astropy.table import Table

    result = simulate_sector(
        _config(size=200, cadences=1, stars=4000, bright=0, seed=2, compress=False),
        tmp_path,
        progress=False,
    )
    tmag = Table.read(result["catalog"], format="ascii.csv")["Tmag"]
    counts, edges = np.histogram(tmag, bins=np.arange(6, 18))
    slope = np.polyfit(0.5 * (edges[1:] + edges[:-1])[3:], np.log10(counts[3:]), 1)[0]
    assert slope == pytest.approx(0.3, abs=0.03)
    assert tmag.min() >= 6 and tmag.max() <= 17
    # Fluxes follow the documented zero point.
    assert tmag_to_flux(10.0) == pytest.approx(15000, rel=0.01)
