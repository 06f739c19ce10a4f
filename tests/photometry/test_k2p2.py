"""K2P2 masks on synthetic stamps: Gaussian stars on a noisy, background-subtracted sky."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.table import Table

from tessphot.config.k2p2 import K2P2Settings
from tessphot.photometry.errors import K2P2NoFlux, K2P2NoStars
from tessphot.photometry.k2p2 import (
    _fill_single_holes,
    combined_magnitude,
    k2p2_masks,
    minimum_aperture,
    skip_targets,
)

#: The original's settings as written in TASOC's light curves (the reference file).
REFERENCE_KP = {
    "KP_THRES": 0.8,
    "KP_MIPIX": 4,
    "KP_MICLS": 4,
    "KP_CLSRA": 1.414213562373095,
    "KP_WS": True,
    "KP_WSBLR": 0.5,
    "KP_WSTHR": 0,
    "KP_WSFOT": 3,
    "KP_EX": True,
}
#: Saturation level of the synthetic sum images [e-/s].
SATURATION = 2e5


def _star(shape, row, col, amplitude, sigma=1.0):
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return amplitude * np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * sigma**2))


def _sky(shape, seed):
    return np.random.default_rng(seed).normal(0.0, 1.0, shape)


def _which(masks, row, col):
    return [k for k, m in enumerate(masks) if m[round(row), round(col)]]


def test_two_separated_stars():
    shape = (15, 15)
    image = _sky(shape, 1) + _star(shape, 4, 4, 500) + _star(shape, 10, 11, 300)
    catalog = {"row": [4.0, 10.0], "column": [4.0, 11.0], "tmag": [10.0, 10.5]}
    for cat in (None, catalog):
        masks, bandwidth = k2p2_masks(image, cat)
        assert masks.shape == (2, *shape) and masks.dtype == bool
        assert bandwidth > 0
        assert _which(masks, 4, 4) == [0] and _which(masks, 10, 11) == [1]  # largest first
        assert not np.any(masks[0] & masks[1])
        assert masks[0].sum() > masks[1].sum() >= 9


def test_blended_stars_split_by_watershed():
    shape = (15, 15)
    image = _sky(shape, 2) + _star(shape, 7, 5.5, 500) + _star(shape, 7.2, 8.6, 400)
    catalog = Table({"row_stamp": [7.0, 7.2], "column_stamp": [5.5, 8.6], "tmag": [10.0, 10.2]})
    masks, _ = k2p2_masks(image, catalog)
    assert len(masks) == 2
    assert _which(masks, 7, 5) == [0]
    assert _which(masks, 7, 9) == [1]
    assert not np.any(masks[0] & masks[1])
    # One catalog star only: one marker, the blend stays one mask.
    masks, _ = k2p2_masks(image, {"row": [7.0], "column": [5.5], "tmag": [10.0]})
    assert len(masks) == 1 and masks[0][7, 5] and masks[0][7, 9]
    # Without segmentation the blend is one cluster.
    masks, _ = k2p2_masks(image, catalog, K2P2Settings(segmentation=False))
    assert len(masks) == 1 and masks[0][7, 5] and masks[0][7, 9]


def _saturated_stamp():
    """A saturated star with a bleed column reaching 14 rows above and below it."""
    shape = (41, 21)
    r0, c0 = 20, 10
    image = np.minimum(_star(shape, r0, c0, 1e6, sigma=1.2), SATURATION)
    image[r0 - 14 : r0 + 15, c0] = SATURATION
    image += _sky(shape, 3)
    # Along the trail, beyond the star, the neighbouring columns are plain sky, so DBSCAN
    # alone cannot follow a one-pixel-wide trail (a pixel needs 3 significant neighbours).
    beside = np.zeros(shape, bool)
    beside[:, [c0 - 1, c0 + 1]] = True
    beside[r0 - 6 : r0 + 7, :] = False
    image[beside] = 0.0
    return image, (r0, c0), np.arange(r0 - 14, r0 + 15)


def test_saturated_star_gets_its_bleed_column():
    image, (r0, c0), trail = _saturated_stamp()
    bright = {"row": [r0], "column": [c0], "tmag": [4.0]}
    masks, _ = k2p2_masks(image, bright)
    assert len(masks) == 1
    assert masks[0][trail, c0].all()
    assert masks[0][:, c0].sum() == trail.size  # exactly the trail: stops at the sky
    without, _ = k2p2_masks(image, bright, K2P2Settings(extend_overflow=False))
    assert not without[0][trail, c0].all()
    assert np.all(masks[0] >= without[0])
    # A catalog star fainter than the saturation limit: no extension.
    faint, _ = k2p2_masks(image, {"row": [r0], "column": [c0], "tmag": [9.0]})
    assert np.array_equal(faint[0], without[0])
    # Without a catalog every mask may be extended.
    free, _ = k2p2_masks(image)
    assert free[_which(free, r0, c0)[0]][trail, c0].all()


def test_no_stars_and_no_flux():
    shape = (15, 15)
    with pytest.raises(K2P2NoStars, match="no stars"):
        k2p2_masks(_sky(shape, 4))
    with pytest.raises(K2P2NoStars):
        k2p2_masks(np.full(shape, 5.0))  # flat: nothing above the sky
    with pytest.raises(K2P2NoFlux, match="no positive flux"):
        k2p2_masks(-np.abs(_sky(shape, 4)))
    with pytest.raises(K2P2NoFlux):
        k2p2_masks(np.full(shape, np.nan))
    # The original algorithm finds "masks" in pure noise: why tessphot gates on significance.
    original = K2P2Settings(sky_positive_only=True, min_peak_significance=0)
    assert len(k2p2_masks(_sky(shape, 4), settings=original).masks) > 0


def test_original_settings_still_find_stars():
    shape = (15, 15)
    image = 100.0 + _sky(shape, 1) + _star(shape, 4, 4, 500)  # a positive sky, as on K2
    original = K2P2Settings(sky_positive_only=True, min_peak_significance=0)
    masks, _ = k2p2_masks(image, {"row": [4], "column": [4], "tmag": [10]}, original)
    assert len(masks) == 1 and masks[0][4, 4]


def test_nan_pixels_and_uncatalogued_stars():
    shape = (15, 15)
    image = _sky(shape, 5) + _star(shape, 4, 4, 500) + _star(shape, 10, 11, 300)
    image[:, 0] = np.nan
    masks, _ = k2p2_masks(image, {"row": [4.0], "column": [4.0], "tmag": [10.0]})
    assert len(masks) == 1  # the uncatalogued star at (10, 11) gets no mask
    assert masks[0][4, 4] and not masks[0][:, 0].any()


def test_catalog_validation():
    image = _sky((15, 15), 1) + _star((15, 15), 7, 7, 500)
    with pytest.raises(ValueError, match="'row' or 'row_stamp'"):
        k2p2_masks(image, {"x": [1.0], "column": [1.0], "tmag": [1.0]})
    with pytest.raises(ValueError, match="differ in length"):
        k2p2_masks(image, {"row": [1.0, 2.0], "column": [1.0], "tmag": [1.0]})
    with pytest.raises(ValueError, match="2-D"):
        k2p2_masks(np.ones(5))


def test_settings():
    settings = K2P2Settings()
    keywords = settings.header_keywords()
    for key, value in REFERENCE_KP.items():
        assert keywords[key][0] == pytest.approx(value), key
    assert all(len(key) <= 8 for key in keywords)
    assert settings.to_dict()["cluster_radius"] == math.sqrt(2)
    assert K2P2Settings.from_mapping({"thresh": 1.0}).thresh == 1.0
    with pytest.raises(ValueError, match="unknown K2P2 setting"):
        K2P2Settings.from_mapping({"treshold": 1.0})


def test_fill_single_holes():
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True
    mask[2, 2] = False
    assert _fill_single_holes(mask)[2, 2]
    ring = np.zeros((6, 6), bool)
    ring[1:5, 1:5] = True
    ring[2:4, 2:4] = False  # a 2x2 hole is not a single-pixel hole
    assert not _fill_single_holes(ring)[2:4, 2:4].any()


def test_minimum_aperture():
    assert minimum_aperture((10, 10), 4.3, 5.6).sum() == 4  # 2x2
    mask = minimum_aperture((10, 10), 4.0, 5.0)
    assert mask.sum() == 9 and mask[3:6, 4:7].all()  # exactly centred: 3x3
    collected = np.ones((10, 10), bool)
    collected[4, :] = False
    assert minimum_aperture((10, 10), 4.0, 5.0, collected).sum() == 6
    assert minimum_aperture((10, 10), 0.2, 0.2).sum() == 4  # clipped at the edge: (0-1, 0-1)


def test_combined_magnitude_and_skip_targets():
    mask = np.zeros((10, 10), bool)
    mask[3:6, 3:6] = True
    rows = np.array([4.0, 5.4, 8.0, 3.6])  # target, neighbour in mask, outside, in mask
    cols = np.array([4.0, 4.6, 8.0, 2.6])  # the last rounds to column 3: in the mask
    assert combined_magnitude([10.0, 10.0]) == pytest.approx(10 - 2.5 * math.log10(2))
    assert combined_magnitude([]) == math.inf
    assert skip_targets(mask, [1, 2, 3, 4], rows, cols, target_starid=1) == [2, 4]
    assert skip_targets(mask, [1], rows[:1], cols[:1], target_starid=1) == []


def test_target_masks_are_those_among_all():
    """Masks asked for one pixel: those holding it among all the masks, in crowded scenes."""
    shape = (21, 21)
    rng = np.random.default_rng(12)
    restricted = 0
    for seed in range(40):
        n = int(rng.integers(2, 9))
        rows, cols = rng.uniform(1, 20, n), rng.uniform(1, 20, n)
        image = _sky(shape, seed)
        for r, c, a in zip(rows, cols, rng.uniform(30, 900, n), strict=True):
            image += _star(shape, r, c, a)
        catalog = {"row": rows, "column": cols, "tmag": rng.uniform(8, 13, n)}
        if seed % 10 == 9:
            catalog["tmag"][0] = 5.0  # a saturated star: every cluster is segmented
        every, _ = k2p2_masks(image, catalog)
        for r, c in zip(rows, cols, strict=True):
            pixel = (round(r), round(c))
            masks, _ = k2p2_masks(image, catalog, target=pixel)
            held = [m for m in every if m[pixel]]
            got = [m for m in masks if m[pixel]]
            assert len(got) == len(held)
            for a, b in zip(got, held, strict=True):
                np.testing.assert_array_equal(a, b)
            restricted += len(masks) < len(every)
    assert restricted > 20  # the shortcut was taken
