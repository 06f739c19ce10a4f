"""PRF models: real SPOC tables and the analytic fallback."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tessphot import env
from tessphot.catalog.make import make_catalogs
from tessphot.catalog.sources.file import FileSource
from tessphot.config.photometry import PhotometrySettings
from tessphot.io.errors import TessphotError
from tessphot.photometry.scene import ccd_prf
from tessphot.photometry.target import open_target
from tessphot.prf import (
    ANALYTIC,
    OVERSAMPLE,
    TABLE_CENTRE,
    AnalyticPRF,
    PRFModel,
    SpocPRF,
    load_prf,
    spoc_prf_folder,
)
from tessphot.sources import clear_cache


def _centroid(stamp, row0, col0, row, col, radius=2.5):
    """Centroid of the PRF core (median-subtracted, within ``radius`` of the position): the
    definition of a star's position in tessphot.prf."""
    yy, xx = np.mgrid[: stamp.shape[0], : stamp.shape[1]]
    yy, xx = yy + row0, xx + col0
    w = np.where(np.hypot(yy - row, xx - col) <= radius, stamp - np.median(stamp), 0.0)
    return (w * yy).sum() / w.sum(), (w * xx).sum() / w.sum()


@pytest.mark.parametrize("model", ["spoc", "analytic"])
def test_stamps_normalised_and_centred(model, prf_dir):
    prf = SpocPRF(prf_dir, 1, 1, 4) if model == "spoc" else AnalyticPRF()
    rng = np.random.default_rng(0)
    rows = rng.uniform(10, 2030, 50)
    cols = rng.uniform(10, 2030, 50)
    stamps, row0, col0 = prf.stamps(rows, cols)
    assert stamps.shape == (50, 13, 13)
    np.testing.assert_allclose(stamps.sum(axis=(1, 2)), 1.0)
    assert np.all(stamps >= 0)
    for s, r0, c0, r, c in zip(stamps, row0, col0, rows, cols, strict=True):
        cr, cc = _centroid(s, r0, c0, r, c)
        # Pixel sampling of a circular core window alone moves a centroid by ~0.03 px.
        assert abs(cr - r) < 0.05 and abs(cc - c) < 0.05


def test_spoc_prf_interpolates_between_grid_positions(prf_dir):
    prf = SpocPRF(prf_dir, 1, 1, 4)
    assert prf.node_rows.tolist() == [0, 512, 1024, 1535, 2047]
    assert prf.node_cols.tolist() == [0, 512, 1024, 1535, 2047]
    a, *_ = prf.stamps([512.0], [512.0])
    b, *_ = prf.stamps([1024.0], [512.0])
    mid, *_ = prf.stamps([768.0], [512.0])
    # Bilinear in position: halfway between two nodes is the mean of the two (same phase),
    # up to the per-stamp normalisation.
    nodes, weights = prf._node_weights(np.array([768.0]), np.array([512.0]))
    assert sorted(weights[:, 0][weights[:, 0] > 0].tolist()) == [0.5, 0.5]
    np.testing.assert_allclose(mid, 0.5 * (a + b), rtol=2e-3, atol=1e-7)
    # The PRF changes across the CCD (the models differ).
    assert np.abs(a - b).max() > 1e-3


def test_tables_as_rendered_at_any_position(prf_dir):
    """``tables`` are the rendered ones (unit flux); ``tables_at`` interpolates them as
    rendering does; a model of another's tables without a second taper renders the same."""
    prf = SpocPRF(prf_dir, 1, 1, 4)
    np.testing.assert_allclose(prf.tables.sum(axis=(1, 2)), OVERSAMPLE**2, rtol=1e-12)
    np.testing.assert_array_equal(prf.tables_at([512.0], [1024.0])[0], prf.tables[7])
    mid = prf.tables_at([768.0, 5000.0], [512.0, -3.0])
    np.testing.assert_allclose(mid[0], 0.5 * (prf.tables[6] + prf.tables[11]), rtol=1e-12)
    np.testing.assert_array_equal(mid[1], prf.tables[20])  # clamped to the grid's corner
    copy = PRFModel(prf.tables, prf.node_rows, prf.node_cols, "copy", "copy", taper=False)
    np.testing.assert_allclose(copy.tables, prf.tables, rtol=1e-14)
    rows, cols = [700.3, 1300.8], [100.6, 1900.1]
    np.testing.assert_allclose(
        copy.render(rows, cols, [1.0, 2.0], (40, 40), (680, 80)),
        prf.render(rows, cols, [1.0, 2.0], (40, 40), (680, 80)),
        rtol=1e-12,
        atol=1e-15,
    )
    # Tapered twice, the wings would be cut again.
    twice = PRFModel(prf.tables, prf.node_rows, prf.node_cols, "twice", "twice")
    assert not np.allclose(twice.tables, prf.tables, rtol=1e-3)


def test_spoc_prf_sector_choice(prf_dir):
    assert spoc_prf_folder(prf_dir, 3, 1, 4).parent.name == "Sectors1_2_3"
    assert spoc_prf_folder(prf_dir, 4, 2, 1).parent.name == "Sectors4+"
    assert SpocPRF(prf_dir, 10, 2, 1).folder.parent.name == "Sectors4+"
    with pytest.raises(FileNotFoundError, match="cam3_ccd3"):
        SpocPRF(prf_dir, 1, 3, 3)


def test_render_conserves_flux_and_clips_at_edges():
    prf = AnalyticPRF()
    image = prf.render([20.3, 0.2], [30.7, 0.4], [1000.0, 500.0], (40, 60))
    # The first star is fully inside, the second loses its light beyond the corner.
    assert image[10:31, 20:41].sum() == pytest.approx(1000.0, rel=1e-9)
    assert 100 < image.sum() - 1000.0 < 500.0
    shifted = prf.render([20.3], [30.7], [1000.0], (40, 60), origin=(5, 10))
    np.testing.assert_allclose(
        shifted[15, 21], prf.render([20.3], [30.7], [1.0], (40, 60))[20, 31] * 1000
    )


def test_many_stamps_and_scenes_as_one_at_a_time(monkeypatch, prf_dir):
    """Stamps interpolated in blocks, scenes rendered by bands of rows: as star by star."""
    import tessphot.prf.models as models

    prf = SpocPRF(prf_dir, 1, 1, 4)
    rng = np.random.default_rng(5)
    n = 300
    rows, cols = rng.uniform(-5, 105, n), rng.uniform(-5, 85, n)
    flux = 10 ** rng.uniform(1, 4, n)
    monkeypatch.setattr(models, "ACCUMULATE_CHUNK", 64)
    monkeypatch.setattr(models, "RENDER_CHUNK", 50)
    stamps, row0, col0 = prf.stamps(rows, cols)
    image = prf.render(rows, cols, flux, (100, 80))
    expected = np.zeros((100 + 26, 80 + 26))
    for i in range(n):
        one, r0, c0 = prf.stamps(rows[i : i + 1], cols[i : i + 1])
        np.testing.assert_array_equal(one[0], stamps[i])
        assert (r0[0], c0[0]) == (row0[i], col0[i])
        expected[r0[0] + 13 : r0[0] + 26, c0[0] + 13 : c0[0] + 26] += flux[i] * one[0]
    np.testing.assert_allclose(image, expected[13:-13, 13:-13], rtol=1e-12, atol=1e-9)


def test_kept_shapes_are_the_shapes_made_anew(monkeypatch, prf_dir):
    """Shapes taken from the kept ones are those made alone, in any company and order."""
    import tessphot.prf.models as models

    monkeypatch.setattr(models, "KEPT_SHAPES", 5)
    prf = SpocPRF(prf_dir, 1, 1, 4)
    rng = np.random.default_rng(8)
    rows, cols = rng.uniform(0, 2000, 8), rng.uniform(40, 2090, 8)
    alone = [SpocPRF(prf_dir, 1, 1, 4).shape_tables(rows[i], cols[i])[0] for i in range(8)]
    for order in (np.arange(8), np.array([3, 1, 3, 7, 0]), rng.permutation(8)):
        got = prf.shape_tables(rows[order], cols[order])
        assert got.shape == (order.size, *alone[0].shape) and got.dtype == np.float32
        for k, i in enumerate(order):
            np.testing.assert_array_equal(got[k], alone[i])
        assert len(prf._kept_shapes) <= 5
    assert prf.shape_tables(np.zeros(0), np.zeros(0)).shape == (0, *alone[0].shape)


def test_kept_stamps_are_the_stamps_made_anew_and_the_oldest_go_first(monkeypatch, prf_dir):
    """Kept stamps are those rendered alone; a full store drops the oldest it made."""
    import tessphot.prf.models as models

    monkeypatch.setattr(models, "KEPT_STAMPS", 6)
    prf = SpocPRF(prf_dir, 1, 1, 4)
    rng = np.random.default_rng(9)
    rows, cols = rng.uniform(0, 2000, 10), rng.uniform(40, 2090, 10)
    fresh, row0, col0 = SpocPRF(prf_dir, 1, 1, 4).stamps(rows, cols)
    orders = ([0, 1, 2, 3], [2, 5, 2, 7], [9, 8, 0, 1], [1, 0])
    for order in map(np.array, orders):
        got, r0, c0 = prf.kept_stamps(rows[order], cols[order], rows[order], cols[order])
        np.testing.assert_array_equal(got, fresh[order])
        np.testing.assert_array_equal(r0, row0[order])
        np.testing.assert_array_equal(c0, col0[order])
        assert len(prf._kept) <= 6
    # Made in turn: 0-3; 5 and 7; 9 and 8 (0 and 1 found, then dropped); 1 and 0 again.
    kept = [int(np.flatnonzero(rows == key[0])[0]) for key in prf._kept]
    assert kept == [5, 7, 9, 8, 1, 0]


def test_analytic_prf_width():
    prf = AnalyticPRF(fwhm=1.9)
    stamp, *_ = prf.stamps([0.0], [0.0])
    # Pixel-integrated: the central pixel of a 1.9-px-FWHM Gaussian holds ~19 % of the core.
    assert 0.14 < stamp[0, 6, 6] < 0.22
    assert stamp[0].sum() == pytest.approx(1.0)
    assert load_prf(None, 1, 1, 1).name.startswith("analytic")
    assert len(prf.short_name) <= 40


def test_table_geometry():
    assert TABLE_CENTRE == 58 and OVERSAMPLE == 9


# -- which PRF the photometry takes ---------------------------------------------------------
TPF_TIC = 25155310
TPF_NAME = "tess2018206045859-s0001-0000000025155310-0120-s_tp.fits.gz"


def test_ccd_prf_choice_order(prf_dir, monkeypatch):
    """The setting first; then the prepare stage's record (prepared data), or for data not
    prepared (TPFs, ``prepare_settings`` None) ``$TESSPHOT_PRF_DIR``; then analytic."""
    monkeypatch.delenv(env.PRF_DIR, raising=False)
    assert isinstance(ccd_prf(None, "", 1, 4, 1), AnalyticPRF)
    monkeypatch.setenv(env.PRF_DIR, str(prf_dir))
    assert isinstance(ccd_prf(None, "", 1, 4, 1), SpocPRF)
    assert isinstance(ccd_prf(None, ANALYTIC, 1, 4, 1), AnalyticPRF)
    # Prepared data keep the PRF their prepare stage recorded.
    assert isinstance(ccd_prf(json.dumps({"prf": ANALYTIC}), "", 1, 4, 1), AnalyticPRF)
    recorded = json.dumps({"prf": str(prf_dir)})
    monkeypatch.setenv(env.PRF_DIR, ANALYTIC)
    assert isinstance(ccd_prf(recorded, "", 1, 4, 1), SpocPRF)
    monkeypatch.setenv(env.PRF_DIR, str(prf_dir / "missing"))
    with pytest.raises(TessphotError, match="missing"):
        ccd_prf(None, "", 1, 4, 1)


def test_tpf_photometry_takes_tessphot_prf_dir(test_data, prf_dir, tmp_path, monkeypatch):
    """A TPF target's PRF (motion correction, contamination, ``AP_PRF``) follows
    ``$TESSPHOT_PRF_DIR`` as ``prepare`` does; without it, the analytic PRF."""
    (tmp_path / "tpfs").mkdir()
    shutil.copy(
        test_data / "tpf" / "tess25155310-s01-first-cadences.fits.gz", tmp_path / "tpfs" / TPF_NAME
    )
    catalog = tmp_path / "user_catalog.csv"
    catalog.write_text(f"ID,ra,dec,Tmag\n{TPF_TIC},63.37389,-69.226789,10.555\n")
    make_catalogs(1, tmp_path, FileSource([catalog]), cameras=[4], ccds=[1], overwrite=True)
    timing = {"ephemeris_dirs": [str(test_data / "ephemeris")], "download": False}
    target = open_target(TPF_TIC, tmp_path, 1, 4, 1, cadence=120, datasource="tpf", timing=timing)
    monkeypatch.delenv(env.PRF_DIR, raising=False)
    assert isinstance(target.prf, AnalyticPRF) and not target.prf_trusted
    monkeypatch.setenv(env.PRF_DIR, str(prf_dir))
    assert isinstance(target.prf, SpocPRF) and target.prf_trusted
    # The setting still wins.
    settings = PhotometrySettings.from_mapping({"prf_dir": ANALYTIC})
    other = open_target(
        TPF_TIC, tmp_path, 1, 4, 1, cadence=120, datasource="tpf", settings=settings, timing=timing
    )
    assert isinstance(other.prf, AnalyticPRF)
    clear_cache()
