"""The grid DBSCAN of K2P2 against scikit-learn's general DBSCAN."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.cluster import DBSCAN

from tessphot.photometry.k2p2_clusters import RADIUS_TOLERANCE, cluster_pixels


def _sklearn(significant, radius, min_samples):
    coords = np.argwhere(significant)
    fitted = DBSCAN(eps=radius * (1 + RADIUS_TOLERANCE), min_samples=min_samples).fit(coords)
    core = np.zeros(len(coords), dtype=bool)
    core[fitted.core_sample_indices_] = True
    return coords, fitted.labels_, core


@pytest.mark.parametrize("radius", [1.0, math.sqrt(2), 1.9, 2.5])
@pytest.mark.parametrize("min_samples", [1, 3, 4, 6])
@pytest.mark.parametrize("density", [0.3, 0.55])
def test_same_clusters_as_scikit_learn(radius, min_samples, density):
    rng = np.random.default_rng(int(100 * radius) + 7 * min_samples + int(10 * density))
    for _ in range(5):
        significant = rng.random((23, 31)) < density
        got = cluster_pixels(significant, radius, min_samples)
        coords, labels, core = _sklearn(significant, radius, min_samples)
        np.testing.assert_array_equal(got.coords, coords)
        np.testing.assert_array_equal(got.core, core)
        # The same clusters with the same numbers, border pixels included.
        np.testing.assert_array_equal(got.labels, labels)


def test_border_pixel_between_two_clusters_joins_the_first():
    # Two 2x2 blocks (core at min_samples 4 with 8 neighbours) and one pixel touching both.
    significant = np.zeros((6, 8), dtype=bool)
    significant[1:3, 1:3] = True
    significant[1:3, 5:7] = True
    significant[2, 4] = False
    significant[3, 3:5] = [True, False]
    got = cluster_pixels(significant, math.sqrt(2), 4)
    coords, labels, _ = _sklearn(significant, math.sqrt(2), 4)
    np.testing.assert_array_equal(got.labels, labels)
    assert set(got.labels) == {0, 1}


def test_nothing_significant():
    got = cluster_pixels(np.zeros((5, 5), dtype=bool), math.sqrt(2), 4)
    assert got.coords.shape == (0, 2) and got.labels.size == 0 and got.core.size == 0
