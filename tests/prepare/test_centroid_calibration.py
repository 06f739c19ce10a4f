"""The centroids' bias calibrated with the PRF: positions that follow the stars."""

import numpy as np
import pytest

import tessphot.prepare.centroid_calibration as calibration
from tessphot.prepare.centroid_calibration import calibrate_centroids
from tessphot.prepare.motion import measure_centroids
from tessphot.prf import load_prf
from tessphot.prf.effective import EffectivePRF
from tessphot.prf.focus import FocusedPRF, scaled_model

ORIGIN = (900, 900)
SHAPE = (300, 300)


def _grid_of_stars(rng):
    g = np.arange(920.0, 1180.0, 20.0)
    rows, cols = (a.ravel() + rng.uniform(-0.5, 0.5, a.size) for a in np.meshgrid(g, g))
    return rows, cols


def _box_centroids(prf_of, stars, shifts, boxes, nodes):
    """Box centroids (frames, n, 2) about ``boxes`` (rows, cols) of the ``stars`` (rows,
    cols, flux) moved by each shift; ``prf_of(k)`` renders frame k, each star's shape that
    of its ``nodes`` position."""
    rows, cols, flux = stars
    out = np.empty((len(shifts), boxes[0].size, 2))
    for k, (dr, dc) in enumerate(shifts):
        image = prf_of(k).render(
            rows + dr, cols + dc, flux, SHAPE, ORIGIN, node_rows=nodes[0], node_cols=nodes[1]
        )
        out[k] = measure_centroids(image, *boxes, ORIGIN, 2)
    return out


@pytest.mark.parametrize("spoc", [False, True])
def test_calibrated_centroids_follow_the_star(spoc, request):
    """Box centroids move ~10 % less than the star; through the PRF they are exact (the
    PRF's centroid sums interpolated between its own knots: a spline on a 0.1-px grid left
    0.8 mpx with the SPOC PRF)."""
    prf = load_prf(request.getfixturevalue("prf_dir") if spoc else None, 1, 1, 4)
    rng = np.random.default_rng(3)
    rows, cols = _grid_of_stars(rng)
    shifts = rng.uniform(-0.6, 0.6, (12, 2))
    measured = _box_centroids(lambda k: prf, (rows, cols, 1e4), shifts, (rows, cols), (rows, cols))
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
    assert motion < 5e-5
    assert np.abs(err[ok]).max() < 1e-4


@pytest.mark.parametrize("spoc", [False, True])
def test_calibrated_centroids_far_from_the_box_centre(spoc, request):
    """Boxes are placed where the catalogue puts the stars; the pointing can carry them
    far from there (simulated sector 1: 0.9 px at the middle of an orbit, 1.4 px at its
    end). Up to the box's edge the calibration follows (with a range of 1.5 px it was
    clipped: 0.08 px off, and every aperture's motion correction with it)."""
    prf = load_prf(request.getfixturevalue("prf_dir") if spoc else None, 1, 1, 4)
    rng = np.random.default_rng(4)
    rows, cols = _grid_of_stars(rng)
    true_rows = rows + 0.9
    shifts = np.column_stack([np.linspace(-0.75, 0.5, 6), np.linspace(0.2, -0.1, 6)])
    measured = _box_centroids(
        lambda k: prf, (true_rows, cols, 1e4), shifts, (rows, cols), (rows, cols)
    )
    positions = calibrate_centroids(measured, rows, cols, prf, 2)
    truth = np.stack([true_rows + shifts[:, :1], cols + shifts[:, 1:]], axis=2)
    err = positions - truth
    print(f"\nlargest error {np.nanmax(np.abs(err)):.5f} px")
    assert np.nanmax(np.abs(err)) < 1e-3


def test_calibrated_centroids_hold_with_neighbours_in_the_box(prf_dir):
    """A neighbour's light in a centroid box lowers the centroid's response to the motion
    (by ~1.5 % for 1-5 % of the box's light): with the catalogued neighbours in the model
    the positions follow the star again."""
    prf = load_prf(prf_dir, 1, 1, 4)
    rng = np.random.default_rng(4)
    rows, cols = _grid_of_stars(rng)
    flux = np.full(rows.size, 1e4)
    # A neighbour of 10 % of the flux 2.6 px from every reference star.
    n_rows, n_cols = rows + 0.7, cols + 2.5
    all_rows, all_cols = np.r_[rows, n_rows], np.r_[cols, n_cols]
    all_flux = np.r_[flux, 0.1 * flux]
    shifts = np.c_[np.linspace(-0.15, 0.15, 9), np.linspace(0.1, -0.1, 9)]
    measured = _box_centroids(
        lambda k: prf, (all_rows, all_cols, all_flux), shifts, (rows, cols), (all_rows, all_cols)
    )
    truth = np.stack([rows + shifts[:, :1], cols + shifts[:, 1:]], axis=2)

    def motion_error(positions):
        err = positions - truth
        return np.sqrt(np.mean((err - err[4]) ** 2))

    alone = calibrate_centroids(measured, rows, cols, prf, 2)
    modelled = calibrate_centroids(
        measured, rows, cols, prf, 2, flux=flux, catalogued=(all_rows, all_cols, all_flux)
    )
    print(
        f"\nmotion error: neighbour ignored {motion_error(alone):.5f} px, "
        f"modelled {motion_error(modelled):.6f} px"
    )
    assert motion_error(alone) > 5e-4
    assert motion_error(modelled) < 0.1 * motion_error(alone)
    assert motion_error(modelled) < 5e-5


def test_a_star_beyond_its_tables_is_inverted_again_up_to_the_box_edge(monkeypatch):
    """Tables cover what the measured centroids can stand for; a star found beyond them
    (e.g. a neighbour pulling its centroid outwards) is inverted again with tables up to
    the box's edge, and gets the same positions as with those tables from the start."""
    prf = load_prf(None, 1, 1, 4)
    rng = np.random.default_rng(5)
    rows, cols = _grid_of_stars(rng)
    true_rows = rows + 0.9
    shifts = np.column_stack([np.linspace(-0.3, 0.3, 5), np.linspace(0.2, -0.1, 5)])
    measured = _box_centroids(
        lambda k: prf, (true_rows, cols, 1e4), shifts, (rows, cols), (rows, cols)
    )
    found = calibrate_centroids(measured, rows, cols, prf, 2)
    truth = np.stack([true_rows + shifts[:, :1], cols + shifts[:, 1:]], axis=2)
    assert np.nanmax(np.abs(found - truth)) < 1e-3
    # Tables far on the other side of the box: every star falls back to the whole box.
    calls = []
    invert = calibration._BoxedStar.invert

    def spying(self, m, w, span, *, last=False):
        calls.append(last)
        return invert(self, m, w, span, last=last)

    monkeypatch.setattr(calibration._BoxedStar, "invert", spying)
    monkeypatch.setattr(
        calibration, "_calibration_span", lambda seen, half: (np.full(2, -2.5), np.full(2, -2.0))
    )
    again = calibrate_centroids(measured, rows, cols, prf, 2)
    assert calls.count(True) == rows.size
    np.testing.assert_allclose(again, found, atol=1e-6)


def test_calibration_follows_a_focus_change():
    """A focus change alters the box centroid's response: stars 0.9 px from their box's
    centre, 2 % broader, seemed ~10 mpx off through the static PRF. Through the focused PRF
    (tables at its anchors, each frame between the two around its scale) they are exact."""
    base = load_prf(None, 1, 1, 4)
    static = EffectivePRF(
        base.tables, base.node_rows, base.node_cols, "test", "test", base_name=base.name,
        base_analytic=True,
    )  # fmt: skip
    rng = np.random.default_rng(6)
    rows, cols = _grid_of_stars(rng)
    true_rows = rows + 0.9
    scale = np.linspace(1.0, 1.02, 6)
    shifts = np.column_stack([np.linspace(-0.4, 0.4, 6), np.linspace(0.2, -0.1, 6)])
    measured = _box_centroids(
        lambda k: scaled_model(static, scale[k]),
        (true_rows, cols, 1e4),
        shifts,
        (rows, cols),
        (rows, cols),
    )
    truth = np.stack([true_rows + shifts[:, :1], cols + shifts[:, 1:]], axis=2)
    fixed = calibrate_centroids(measured, rows, cols, static, 2) - truth
    focused = calibrate_centroids(measured, rows, cols, FocusedPRF(static, scale), 2) - truth
    # The motion between frames is what matters: errors relative to the first frame.
    drift = np.abs(fixed - fixed[:1]).max()
    print(f"\nlargest error: static PRF {drift:.5f} px, focused {np.abs(focused).max():.6f} px")
    assert drift > 5e-3
    assert np.abs(focused).max() < 2e-4
