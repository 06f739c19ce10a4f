"""The background surface: FITPACK's interpolating spline, evaluated on stamps the same way."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import RectBivariateSpline

from tessphot.prepare.background import MeshGeometry
from tessphot.prepare.background_surface import MeshSurface


def _spline(geometry: MeshGeometry, mesh: np.ndarray) -> np.ndarray:
    """The surface as FITPACK evaluates it (the definition before MeshSurface)."""
    ry, rx = geometry.centres
    rows = np.arange(geometry.shape[0], dtype=float)
    cols = np.arange(geometry.shape[1], dtype=float)
    bbox = [min(0, ry[0]), max(rows[-1], ry[-1]), min(0, rx[0]), max(cols[-1], rx[-1])]
    my, mx = mesh.shape
    spline = RectBivariateSpline(ry, rx, mesh, bbox=bbox, kx=min(3, my - 1), ky=min(3, mx - 1))
    return spline(rows, cols)


@pytest.mark.parametrize(
    ("shape", "box", "binning"),
    [((600, 600), 32, 2), ((128, 128), 32, 2), ((33, 97), 16, 1), ((96, 40), 32, 1)],
)
def test_same_as_fitpack_on_the_region_and_on_stamps(shape, box, binning):
    geometry = MeshGeometry(shape, box, binning)
    rng = np.random.default_rng(1)
    meshes = rng.normal(100, 5, (3, *geometry.mesh_shape))
    surface = MeshSurface(shape, geometry.centres)
    coefficients = surface.coefficients(meshes)
    for k, mesh in enumerate(meshes):
        whole = surface.evaluate(mesh)
        if min(geometry.mesh_shape) > 1:
            np.testing.assert_allclose(whole, _spline(geometry, mesh), rtol=0, atol=1e-9)
        np.testing.assert_allclose(geometry.evaluate(mesh), whole, rtol=0, atol=1e-12)
        for r0, c0 in ((0, 0), (shape[0] - 7, shape[1] - 9), (shape[0] // 3, shape[1] // 2)):
            rows = np.arange(r0, r0 + 7, dtype=float)
            cols = np.arange(c0, c0 + 9, dtype=float)
            stamp = surface.evaluate_coefficients(coefficients, rows, cols)[k]
            np.testing.assert_allclose(stamp, whole[r0 : r0 + 7, c0 : c0 + 9], atol=1e-9)


def test_lines_and_constants():
    """One box along an axis: a straight line along the other; one box: a constant."""
    surface = MeshSurface((40, 200), (np.array([19.5]), np.array([16.0, 48.0, 80.0, 112.0])))
    line = surface.evaluate(np.array([[1.0, 2.0, 3.0, 4.0]]))
    np.testing.assert_allclose(line[0], 1.0 + (np.arange(200) - 16.0) / 32.0)
    assert np.ptp(line, axis=0).max() == 0
    constant = MeshSurface((20, 20), (np.array([9.5]), np.array([9.5])))
    assert np.all(constant.evaluate(np.array([[7.0]])) == 7.0)


def test_frames_without_a_mesh_are_nan():
    geometry = MeshGeometry((128, 128), 32, 2)
    surface = MeshSurface((128, 128), geometry.centres)
    meshes = np.ones((2, *geometry.mesh_shape))
    meshes[1] = np.nan
    stamp = surface.evaluate_coefficients(
        surface.coefficients(meshes), np.arange(3.0), np.arange(4.0)
    )
    assert np.all(stamp[0] == pytest.approx(1.0)) and np.isnan(stamp[1]).all()
