"""The starlight model moved to each frame's pointing."""

import numpy as np
import pytest
from scipy import ndimage

from tessphot.config.prepare import BackgroundSettings
from tessphot.prepare.background import estimate_background
from tessphot.prepare.starlight import pointing_shift, shifted
from tessphot.prf import AnalyticPRF

ORIGIN = (500, 700)
SHAPE = (192, 192)


def _field(rng, n_stars=900):
    """A crowded field: catalogue positions and fluxes (a few bright reference stars)."""
    rows = ORIGIN[0] + rng.uniform(-5, SHAPE[0] + 5, n_stars)
    cols = ORIGIN[1] + rng.uniform(-5, SHAPE[1] + 5, n_stars)
    flux = 10 ** rng.uniform(1.0, 3.5, n_stars)
    flux[:30] = 10 ** rng.uniform(4.0, 4.5, 30)
    return rows, cols, flux


@pytest.mark.parametrize(
    ("move", "expected"), [((0.9, -1.2), (1, -1)), ((0.2, 0.3), (0, 0)), ((-1.6, 0.4), (-2, 0))]
)
def test_the_pointing_to_the_nearest_pixel(move, expected):
    prf = AnalyticPRF()
    rows, cols, flux = _field(np.random.default_rng(1))
    image = prf.render(rows + move[0], cols + move[1], flux, SHAPE, ORIGIN) + 80.0
    assert pointing_shift(image, rows[:30], cols[:30], ORIGIN, 2) == expected


def test_no_measurement_no_shift():
    image = np.full(SHAPE, np.nan, dtype=np.float32)
    rows, cols = np.array([550.0]), np.array([750.0])
    assert pointing_shift(image, rows, cols, ORIGIN, 2) == (0, 0)
    assert pointing_shift(np.ones(SHAPE), np.empty(0), np.empty(0), ORIGIN, 2) == (0, 0)


def test_shifted_by_whole_pixels_with_the_edges_repeated():
    a = np.arange(20.0).reshape(4, 5)
    assert shifted(a, (0, 0)) is a
    b = shifted(a, (1, -2))
    np.testing.assert_array_equal(b[1:, :-2], a[:-1, 2:])
    np.testing.assert_array_equal(b[0, :-2], a[0, 2:])
    np.testing.assert_array_equal(b[1:, -1], a[:-1, -1])
    for shift in ((2, 3), (-1, 0), (0, -3), (-2, 1)):
        np.testing.assert_array_equal(
            shifted(a, shift), ndimage.shift(a, shift, order=0, mode="nearest")
        )


def test_the_background_of_a_moved_frame_as_of_one_in_place():
    """The faint stars' light left in the sky depends on where the stars sit against the
    model: a frame moved by 1.3 px gets the background of a frame in place once the model
    follows it."""
    prf = AnalyticPRF()
    rng = np.random.default_rng(2)
    rows, cols, flux = _field(rng, 2500)
    settings = BackgroundSettings(box_size=32)
    starlight = prf.render(rows, cols, flux, SHAPE, ORIGIN).astype(np.float32)
    sky = 80.0
    bias = {}
    for name, move in (("in place", (0.0, 0.0)), ("moved", (1.3, 0.0))):
        stars = prf.render(rows + move[0], cols + move[1], flux, SHAPE, ORIGIN)
        sigma = np.sqrt(stars + sky + 100.0) / 30.0
        image = (stars + sky + sigma * rng.standard_normal(SHAPE)).astype(np.float32)
        model = starlight
        if name == "moved":
            est = estimate_background(image, sigma, model, settings)
            bias["not followed"] = float(np.mean(est.model) - sky)
            shift = pointing_shift(image, rows[:30], cols[:30], ORIGIN, 2)
            assert shift == (1, 0)
            model = shifted(starlight, shift)
        est = estimate_background(image, sigma, model, settings)
        bias[name] = float(np.mean(est.model) - sky)
    print("\nbackground bias [e-/s/px]:", {k: round(v, 4) for k, v in bias.items()})
    followed = abs(bias["moved"] - bias["in place"])
    assert followed < 0.5 * abs(bias["not followed"] - bias["in place"])
