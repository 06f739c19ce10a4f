"""The whole-frame background estimate's masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from tessphot.prepare.background import BackgroundSettings, grow_bleeds, saturation_mask


@pytest.mark.parametrize(("rows", "cols"), [(0, 0), (1, 1), (3, 1), (10, 2)])
def test_grow_bleeds_is_the_rectangular_dilation(rows, cols):
    """Two running maxima give exactly the dilation by the (2 rows + 1) x (2 cols + 1)
    rectangle, at the edges too."""
    rng = np.random.default_rng(rows * 10 + cols)
    saturated = rng.random((57, 43)) > 0.995
    saturated[0, 5] = saturated[-1, -1] = True
    structure = np.ones((2 * rows + 1, 2 * cols + 1), dtype=bool)
    expected = ndimage.binary_dilation(saturated, structure=structure)
    grown = grow_bleeds(saturated, rows, cols)
    assert grown.dtype == bool
    np.testing.assert_array_equal(grown, expected)


def test_saturation_mask_ignores_nan():
    settings = BackgroundSettings()
    image = np.zeros((40, 30), dtype=np.float32)
    image[5, 5] = np.nan
    image[20, 10] = 2 * settings.saturation_rate
    mask = saturation_mask(image, settings)
    assert not mask[5, 5] and mask[20, 10]
    assert mask[20 + settings.bleed_margin_rows, 10]
    assert not mask[20 + settings.bleed_margin_rows + 1, 10]


def test_full_resolution_surface_in_single_precision():
    """The band-wise 32-bit evaluation is the 64-bit surface rounded."""
    from tessphot.prepare.background import EVALUATION_ROWS, MeshGeometry

    geometry = MeshGeometry((EVALUATION_ROWS * 2 + 37, 300), 32, 2)
    rng = np.random.default_rng(4)
    mesh = 100.0 + rng.normal(0.0, 5.0, geometry.mesh_shape)
    single = geometry.evaluate_single(mesh)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, geometry.evaluate(mesh), rtol=1e-6)
