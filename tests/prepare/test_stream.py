"""The streaming of frames through the workers: the ring of frames and what is shared."""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.prepare.motion import measure_centroids
from tessphot.prepare.stream import ring_slots, shared_constants


@pytest.mark.parametrize(
    ("window", "workers", "slots"), [(7, 0, 7), (7, 2, 7), (7, 4, 8), (3, 2, 4), (1, 1, 2)]
)
def test_the_ring_holds_a_window_and_a_frame_per_worker(window, workers, slots):
    """Never fewer than a window (a series' first frame waits for the whole window)."""
    assert ring_slots(window, workers) == slots


def test_centroids_with_the_background_subtracted_in_their_boxes():
    rng = np.random.default_rng(2)
    image = rng.normal(50.0, 3.0, (60, 70)).astype(np.float32)
    image[20:23, 30:33] += 1000.0
    background = np.full(image.shape, 50.0, dtype=np.float32)
    rows, cols = np.array([21.2, 40.0]), np.array([31.4, 10.0])
    direct = measure_centroids(image - background, rows, cols, (0, 0), 2)
    boxed = measure_centroids(image, rows, cols, (0, 0), 2, background=background)
    np.testing.assert_array_equal(direct, boxed)


def test_shared_constants_hold_the_starlight_and_the_dither_plane():
    starlight = np.arange(12.0).reshape(3, 4)
    constants = shared_constants(
        {"starlight": starlight, "dither_rows": np.full(3, 0.25), "dither_cols": np.full(4, 0.5)}
    )
    try:
        np.testing.assert_array_equal(constants["starlight"], starlight)
        assert constants["starlight"].dtype == np.float32
        np.testing.assert_allclose(constants["dither_plane"], 0.75)
    finally:
        constants.release()
    empty = shared_constants({"starlight": None, "dither_rows": None})
    assert empty.arrays == {}
    empty.release()
