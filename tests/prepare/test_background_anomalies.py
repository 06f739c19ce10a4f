"""The background anomalies: sub-boxes whose sky the smooth model misses."""

from __future__ import annotations

import numpy as np

from tessphot.config.prepare import BackgroundSettings
from tessphot.prepare.background_anomalies import anomalies


def _flat_residual(shape=(128, 128), seed=5):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, shape), np.ones(shape, dtype=bool), np.ones(shape)


def test_anomalies_flag_the_sub_box_the_smooth_model_misses():
    """A sub-box of sky 3 e-/s above the model (many times its median's error, above the
    absolute level) is flagged, exactly that sub-box of the size asked for; pure noise is
    not."""
    settings = BackgroundSettings()
    assert settings.anomaly_min_level < 3.0
    residual, used, uncertainty = _flat_residual()
    assert not anomalies(residual, used, uncertainty, settings, 8).any()
    residual[16:24, 40:48] += 3.0
    flagged = anomalies(residual, used, uncertainty, settings, 8)
    expected = np.zeros_like(flagged)
    expected[16:24, 40:48] = True
    np.testing.assert_array_equal(flagged, expected)
    # Four times the area: the bump is a quarter of the sub-box, its median stays low.
    assert not anomalies(residual, used, uncertainty, settings, 16).any()


def test_anomalies_use_only_background_pixels():
    """Pixels not used for the background (stars) do not make a sub-box anomalous, and a
    sub-box with fewer than 4 background pixels is never flagged; the region need not be a
    multiple of the sub-box."""
    settings = BackgroundSettings()
    residual, used, uncertainty = _flat_residual((70, 45))
    residual[0:8, 0:8] += 50.0
    used[0:8, 0:8] = False  # a star, masked
    residual[8:16, 8:16] += 50.0
    used[8:16, 8:16] = False
    used[8, 8:11] = True  # three background pixels left: too few
    residual[64:70, 40:45] += 5.0  # the partial sub-box at the corner
    flagged = anomalies(residual, used, uncertainty, settings, 8)
    assert flagged.shape == residual.shape
    assert not flagged[:16, :16].any()
    assert flagged[64:70, 40:45].all() and flagged.sum() == 30
