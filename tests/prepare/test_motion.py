"""The jitter measurement: PRF-calibrated centroids."""

import numpy as np
import pytest

from tessphot.prepare.motion import calibrate_centroids, measure_centroids
from tessphot.prf import load_prf

ORIGIN = (900, 900)
SHAPE = (300, 300)


def _grid_of_stars(rng):
    g = np.arange(920.0, 1180.0, 20.0)
    rows, cols = (a.ravel() + rng.uniform(-0.5, 0.5, a.size) for a in np.meshgrid(g, g))
    return rows, cols


@pytest.mark.parametrize("spoc", [False, True])
def test_calibrated_centroids_follow_the_star(spoc, request):
    """Box centroids move ~10 % less than the star; through the PRF they are exact."""
    prf = load_prf(request.getfixturevalue("prf_dir") if spoc else None, 1, 1, 4)
    rng = np.random.default_rng(3)
    rows, cols = _grid_of_stars(rng)
    shifts = rng.uniform(-0.6, 0.6, (12, 2))
    measured = np.empty((len(shifts), rows.size, 2))
    for k, (dr, dc) in enumerate(shifts):
        image = prf.render(rows + dr, cols + dc, 1e4, SHAPE, ORIGIN, node_rows=rows, node_cols=cols)
        measured[k] = measure_centroids(image, rows, cols, ORIGIN, 2)
    measured[3, 5] = np.nan
    positions = calibrate_centroids(measured, rows, cols, prf, 2)
    truth = np.stack([rows + shifts[:, :1], cols + shifts[:, 1:]], axis=2)
    raw = measured - truth
    err = positions - truth
    assert np.isnan(positions[3, 5]).all()
    ok = np.isfinite(err)
    # The motion between frames is what matters: errors relative to the first frame.
    raw_motion = np.sqrt(np.nanmean((raw - raw[:1]) ** 2))
    motion = np.sqrt(np.nanmean((err - err[:1]) ** 2))
    print(f"\ncentroid motion error: raw {raw_motion:.4f} px, calibrated {motion:.5f} px")
    assert raw_motion > 0.01
    assert motion < 0.002
    assert np.abs(err[ok]).max() < 0.005
