"""The light the true motion moves in and out of an aperture (sector scoring)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tessphot.evaluation.scoring.motion_light import SceneStars, read_scene_stars
from tessphot.prf import load_prf


@pytest.fixture(scope="module")
def prf(prf_dir):
    return load_prf(str(prf_dir), 1, 1, 4)


def _scene(prf) -> SceneStars:
    # The target, a neighbour 10x brighter 2.6 px away, and a star far off.
    return SceneStars(
        starid=np.array([7, 8, 9]),
        row=np.array([510.3, 512.1, 560.0]),
        col=np.array([610.4, 608.2, 660.0]),
        flux=np.array([1000.0, 10000.0, 5000.0]),
        prf=prf,
    )


def _rendered_sum(prf, scene, fluxes, drow, dcol, rows, cols):
    """The aperture's sum of every star rendered at its moved position, per cadence."""
    box = (int(rows.min()), int(cols.min()))
    shape = (int(rows.max()) - box[0] + 1, int(cols.max()) - box[1] + 1)
    out = np.empty(drow.size)
    for k in range(drow.size):
        image = prf.render(
            scene.row + drow[k],
            scene.col + dcol[k],
            fluxes[k],
            shape,
            box,
            node_rows=scene.row,
            node_cols=scene.col,
        )
        out[k] = image[rows - box[0], cols - box[1]].sum()
    return out


def test_motion_light_is_what_the_motion_does_to_the_rendered_sum(prf):
    """The rendered sum less the motion's light does not follow the motion: the target's
    true flux times its mean fraction, plus a constant."""
    scene = _scene(prf)
    rng = np.random.default_rng(5)
    n = 60
    drow = np.cumsum(0.02 * rng.standard_normal(n))
    dcol = np.cumsum(0.02 * rng.standard_normal(n))
    target_flux = 1000.0 * (1 + 0.05 * np.sin(np.arange(n) / 5.0))
    fluxes = np.column_stack([target_flux, np.full(n, 10000.0), np.full(n, 5000.0)])
    rows = np.array([510, 510, 511, 511, 509])
    cols = np.array([610, 611, 610, 611, 610])
    summed = _rendered_sum(prf, scene, fluxes, drow, dcol, rows, cols)
    light = scene.motion_light(rows, cols, drow, dcol, target=7, target_flux=target_flux)
    unit = _rendered_sum(prf, scene, fluxes * [1, 0, 0], drow, dcol, rows, cols) / target_flux
    still = summed - light - target_flux * unit.mean()
    # What the motion moves is large here, and it is all taken out.
    assert np.std(light) > 20 * np.std(still) + 1.0
    np.testing.assert_allclose(still, still.mean(), atol=1e-6)
    # No aperture, no cadences: nothing.
    empty = np.array([], dtype=int)
    assert not scene.motion_light(empty, empty, drow, dcol, target=7, target_flux=target_flux).any()


def test_displacement_is_from_the_catalogue_position(prf):
    scene = _scene(prf)
    drow, dcol = scene.displacement(8, np.array([512.1, 512.2]), np.array([608.0, 608.2]))
    np.testing.assert_allclose(drow, [0.0, 0.1], atol=1e-12)
    np.testing.assert_allclose(dcol, [-0.2, 0.0], atol=1e-12)


def test_read_keeps_the_stars_near_the_targets(tmp_path, prf):
    stars = np.zeros(4, dtype=[("starid", "i8"), ("row", "f8"), ("col", "f8"), ("flux", "f8")])
    stars["starid"] = [10, 11, 12, 13]
    stars["row"] = [100.0, 104.0, 110.0, 1000.0]
    stars["col"] = [100.0, 101.0, 95.0, 1000.0]
    stars["flux"] = [1000.0, 50.0, 80.0, 60.0]
    path = tmp_path / "truth.hdf5"
    with h5py.File(path, "w") as h5:
        h5["stars"] = stars
    with h5py.File(path, "r") as h5:
        scene = read_scene_stars(h5, np.array([0]), prf)
    # Constant or not, every star near the target; the far one left out.
    assert scene.starid.tolist() == [10, 11, 12]
    assert scene.flux.tolist() == [1000.0, 50.0, 80.0]
