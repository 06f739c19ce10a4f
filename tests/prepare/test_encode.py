"""The workers' finishing of frames (tessphot.prepare.encode)."""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.prepare.background import MeshGeometry
from tessphot.prepare.encode import _expanded_rows


@pytest.mark.parametrize("binning", [1, 2, 3])
def test_rows_of_an_expanded_image_are_the_whole_images(binning):
    """Any band of rows of a binned image brought to full resolution is that band of the
    whole image expanded, bands that start inside a binned pixel included."""
    geometry = MeshGeometry((47, 29), 8, binning)
    binned = np.arange(np.prod(geometry.binned_shape), dtype=float).reshape(geometry.binned_shape)
    whole = geometry.expand(binned)
    for start, stop in [(0, 47), (0, 5), (5, 16), (15, 30), (46, 47), (31, 47)]:
        band = _expanded_rows(binned, binning, slice(start, stop), 29)
        np.testing.assert_array_equal(band, whole[start:stop])
