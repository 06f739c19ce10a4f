"""PRF models: real SPOC tables and the analytic fallback."""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.prf import (
    OVERSAMPLE,
    TABLE_CENTRE,
    AnalyticPRF,
    SpocPRF,
    load_prf,
    spoc_prf_folder,
)


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
