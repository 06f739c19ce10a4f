"""The whole-frame background estimate's masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from tessphot.prepare.background import (
    BackgroundSettings,
    MeshGeometry,
    dilate_cross,
    grow_bleeds,
    saturation_mask,
)


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


@pytest.mark.parametrize("iterations", [0, 1, 2, 3])
def test_dilate_cross_is_scipys_default_dilation(iterations):
    """The same as binary_dilation with its cross structure, at the edges too."""
    rng = np.random.default_rng(iterations)
    mask = rng.random((41, 37)) > 0.97
    mask[0, 0] = mask[-1, 10] = mask[5, -1] = True
    expected = ndimage.binary_dilation(mask, iterations=iterations) if iterations else mask
    np.testing.assert_array_equal(dilate_cross(mask, iterations), expected)


@pytest.mark.parametrize("shape", [(64, 48), (63, 47)])
@pytest.mark.parametrize("reduce", ["mean", "quadrature"])
def test_bin_with_a_validity_mask_is_binning_the_image_with_nan(shape, reduce):
    """Pixels not valid count as NaN; a block without a valid finite pixel is NaN."""
    geometry = MeshGeometry(shape, 16, 2)
    rng = np.random.default_rng(7)
    image = rng.normal(10.0, 1.0, shape).astype(np.float32)
    image[3, 4] = np.nan
    valid = rng.random(shape) > 0.3
    valid[:2, :2] = False  # a whole block
    with_nan = geometry.bin(np.where(valid, image, np.nan), reduce)
    binned = geometry.bin(image, reduce, valid=valid)
    np.testing.assert_array_equal(binned, with_nan)
    assert np.isnan(binned[0, 0])
    expected = np.nanmean(np.where(valid, image, np.nan)[2:4, 2:4])
    if reduce == "mean":
        assert binned[1, 1] == pytest.approx(expected)


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


def test_binning_a_frame_holds_bands_not_frames():
    """Binning a full frame allocates a few bands' worth of temporaries beside its result,
    not arrays of the frame's size."""
    import tracemalloc

    from tessphot.prepare.background import BIN_BAND_PIXELS

    geometry = MeshGeometry((2048, 2048), 32, 2)
    image = np.full((2048, 2048), 3.0, dtype=np.float32)
    valid = image > 0
    tracemalloc.start()
    try:
        binned = geometry.bin(image, "quadrature", valid=valid)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # About 18 bytes of temporaries per pixel binned at once; a frame is many bands.
    assert image.size >= 8 * BIN_BAND_PIXELS
    assert peak < binned.nbytes + 24 * BIN_BAND_PIXELS


@pytest.mark.parametrize("binning", [1, 2, 3])
def test_rows_of_an_expanded_image_are_the_whole_images(binning):
    """Any band of rows of a binned image brought to full resolution is that band of the
    whole image expanded, bands that start inside a binned pixel included."""
    geometry = MeshGeometry((47, 29), 8, binning)
    binned = np.arange(np.prod(geometry.binned_shape), dtype=float).reshape(geometry.binned_shape)
    whole = geometry.expand(binned)
    for start, stop in [(0, 47), (0, 5), (5, 16), (15, 30), (46, 47), (31, 47)]:
        band = geometry.expand(binned, slice(start, stop))
        np.testing.assert_array_equal(band, whole[start:stop])
