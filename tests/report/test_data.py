"""The noise model of the report against the numbers of noise-model.md."""

from __future__ import annotations

import numpy as np

from tessphot.report.data import exposure, model_noise, published_noise
from tessphot.report.validation import MASK_FLOOR, expected_mask_size


def test_published_curve_gives_the_documented_precisions():
    # noise-model.md: "about 200, 600, 2300 and 14 000 ppm at T = 10, 12, 14, 16".
    np.testing.assert_allclose(
        published_noise([10, 12, 14, 16]), [200, 600, 2300, 14_000], rtol=0.02
    )


def test_exposure_of_the_cadences():
    # noise-model.md: 720 frames co-added in a 30-min FFI after cosmic-ray mitigation;
    # 1425.6 s collecting photons (1.98 s of each kept 2-s frame).
    np.testing.assert_allclose(exposure(1800), (1425.6, 720))
    np.testing.assert_allclose(exposure(120), (95.04, 48))
    np.testing.assert_allclose(exposure(20), (19.8, 10))  # no mitigation of 20-s data


def test_model_is_the_floor_for_bright_stars_and_shot_noise_in_between():
    # Tmag 4 on one hour: the 60 ppm systematic floor dominates.
    assert 60 <= model_noise(4.0, 300, 1800) < 62
    # Tmag 10, one pixel, 1 h = 2 cadences of 1425.6 s and 1440 frames, sky 50 e-/s: the
    # sum in quadrature of noise-model.md, term by term.
    flux, t, frames = 10 ** (-0.4 * (10 - 20.44)), 2 * 1425.6, 1440
    shot = 1e6 / np.sqrt(flux * t)
    sky = 1e6 * np.sqrt(50 * t) / (flux * t)
    read = 1e6 * 10 * np.sqrt(frames) / (flux * t)
    expected = np.sqrt(shot**2 + sky**2 + read**2 + 60**2)
    np.testing.assert_allclose(model_noise(10.0, 1, 1800), expected, rtol=1e-12)
    # Noise grows with the mask through the sky and read terms.
    assert model_noise(14.0, 50, 1800) > 1.5 * model_noise(14.0, 5, 1800)


def test_usual_mask_size_follows_tasocs_table():
    np.testing.assert_allclose(expected_mask_size([2.0, 14.6]), [1500, 8])
    assert expected_mask_size(20.0) == MASK_FLOOR
    assert np.all(np.diff(expected_mask_size(np.linspace(2, 14, 13))) < 0)
