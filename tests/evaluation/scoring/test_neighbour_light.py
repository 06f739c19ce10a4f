"""The neighbours' true variable light in a target's aperture (sector scoring)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tessphot.evaluation.scoring.neighbour_light import (
    NeighbourLight,
    mask_fractions,
    read_neighbour_light,
)
from tessphot.evaluation.simulate.variability import CONSTANT, SINUSOID
from tessphot.prf import load_prf


@pytest.fixture(scope="module")
def prf(prf_dir):
    return load_prf(str(prf_dir), 1, 1, 4)


def _square(row0, col0, size):
    rows, cols = np.indices((size, size))
    return rows.ravel() + row0, cols.ravel() + col0


def test_mask_fractions_whole_partial_and_none(prf):
    rows, cols = _square(500, 600, 21)
    star_rows = np.array([510.3, 510.3, 510.3, 540.0])
    # Centred, on the mask's last column, and far off in both directions.
    star_cols = np.array([610.4, 620.5, 660.0, 610.4])
    fractions = mask_fractions(prf, star_rows, star_cols, rows, cols)
    stamp, r0, c0 = prf.stamps(star_rows[:1], star_cols[:1], star_rows[:1], star_cols[:1])
    assert fractions[0] == pytest.approx(float(stamp.sum()), rel=1e-9)
    assert 0.35 < fractions[1] < 0.65
    assert fractions[2] == 0 and fractions[3] == 0
    # A mask of one pixel holds what the PRF puts on it.
    one = mask_fractions(prf, star_rows[:1], star_cols[:1], np.array([510]), np.array([610]))
    assert one[0] == pytest.approx(float(stamp[0, 510 - r0[0], 610 - c0[0]]), rel=1e-6)


def test_in_aperture_sums_the_variable_neighbours_but_not_the_target(prf):
    t = np.linspace(0, 10, 200)
    wave = 100.0 * np.sin(2 * np.pi * t / 3.0)
    light = NeighbourLight(
        starid=np.array([1, 2, 3]),
        row=np.array([510.3, 512.0, 900.0]),
        col=np.array([610.4, 613.0, 900.0]),
        deviation=np.column_stack([5 * wave, wave, 7 * wave]),
        prf=prf,
    )
    rows, cols = _square(507, 607, 7)
    fraction = mask_fractions(prf, np.array([512.0]), np.array([613.0]), rows, cols)[0]
    got = light.in_aperture(rows, cols, exclude=1)
    assert 0 < fraction < 1
    np.testing.assert_allclose(got, fraction * wave, rtol=1e-9, atol=1e-12)
    assert not np.any(light.in_aperture(np.array([], int), np.array([], int), exclude=1))


def test_read_keeps_the_variable_stars_near_the_targets(tmp_path, prf):
    n_cad = 30
    stars = np.zeros(4, dtype=[("starid", "i8"), ("row", "f8"), ("col", "f8")])
    stars["starid"] = [10, 11, 12, 13]
    stars["row"] = [100.0, 104.0, 110.0, 1000.0]
    stars["col"] = [100.0, 101.0, 95.0, 1000.0]
    signals = np.zeros(4, dtype=[("kind", "i1")])
    signals["kind"] = [CONSTANT, SINUSOID, CONSTANT, SINUSOID]
    flux = np.tile([1000.0, 50.0, 80.0, 60.0], (n_cad, 1))
    flux[:, 1] += np.arange(n_cad)
    flux[-1, 1] = 1e6  # a bad cadence: not in the mean
    good = np.ones(n_cad, dtype=bool)
    good[-1] = False
    path = tmp_path / "truth.hdf5"
    with h5py.File(path, "w") as h5:
        h5["stars"], h5["signals"], h5["flux"] = stars, signals, flux
    with h5py.File(path, "r") as h5:
        light = read_neighbour_light(h5, good, np.array([0]), prf)
    # The far variable star and the constant ones are left out.
    assert light.starid.tolist() == [11]
    assert light.deviation.shape == (n_cad, 1)
    assert light.deviation[:-1, 0].mean() == pytest.approx(0.0, abs=1e-9)
    assert light.deviation[1, 0] - light.deviation[0, 0] == pytest.approx(1.0)
