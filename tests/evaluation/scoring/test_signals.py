"""The signal-recovery regression of the scoring, on synthetic light curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tessphot.evaluation.scoring.signals import signal_recovery
from tessphot.evaluation.simulate import variability

#: 400 cadences of 30 min [d] from TJD 1325.3.
TIME = 1325.3 + np.arange(400) / 48.0
#: Mean flux of the star [e-/s] and relative white noise per cadence.
MEAN_FLUX = 2.0e5
NOISE = 3e-4


def _true_flux(kind: str, amplitude: float) -> np.ndarray:
    spec = {"kind": kind, "amplitude": amplitude, "period": 1.7, "epoch": 1326.0}
    if kind == "transit":
        spec |= {"period": 2.5, "duration": 0.15}
    row = variability.chosen_signal(spec, TIME[0], np.random.default_rng(0))
    signals = variability.Signals(np.array([row], dtype=variability.SIGNAL_DTYPE))
    return MEAN_FLUX * signals.relative_flux(TIME)[0]


@pytest.mark.parametrize("kind", ["sinusoid", "transit"])
def test_diluted_signal_with_trend_is_recovered(kind):
    """An aperture with 25 % of its light from a constant neighbour, a slow quadratic drift
    and noise: the dilution is undone by the contamination and the trend is fitted out."""
    rng = np.random.default_rng(3)
    true = _true_flux(kind, 0.006)
    contamination = 0.25
    enclosed = 0.9  # of the star's light in the aperture
    neighbour = enclosed * MEAN_FLUX * contamination / (1 - contamination)
    x = (TIME - TIME.mean()) / np.ptp(TIME)
    drift = 1 + 0.01 * x - 0.02 * x**2
    measured = (enclosed * true + neighbour) * drift
    measured *= 1 + NOISE * rng.standard_normal(TIME.size)
    result = signal_recovery(TIME, measured, true, contamination)
    # The aperture's enclosed fraction drops out: the signal is relative.
    assert result.fraction == pytest.approx(1.0, abs=4 * result.fraction_error + 0.01)
    assert 0 < result.fraction_error < 0.02
    assert result.scale == pytest.approx(result.fraction * (1 - contamination))
    # Without the contamination the signal looks diluted by it.
    plain = signal_recovery(TIME, measured, true)
    assert plain.fraction == pytest.approx(1 - contamination, abs=0.02)


def test_partial_signal_and_error_scale_with_noise():
    """A light curve holding 80 % of the signal gives 0.8; the error follows the noise."""
    rng = np.random.default_rng(5)
    true = _true_flux("sinusoid", 0.005)
    relative = true / true.mean() - 1
    measured = MEAN_FLUX * (1 + 0.8 * relative + 1e-3 * rng.standard_normal(TIME.size))
    result = signal_recovery(TIME, measured, true)
    assert result.fraction == pytest.approx(0.8, abs=4 * result.fraction_error)
    # White noise of 1e-3 on 400 cadences of a 0.5 % sinusoid: about 1e-3/(0.005 sqrt(200)).
    assert result.fraction_error == pytest.approx(1e-3 / (0.005 * math.sqrt(200)), rel=0.2)


def test_degenerate_inputs_give_nan():
    true = _true_flux("sinusoid", 0.005)
    flat = signal_recovery(TIME, true, np.full(TIME.size, MEAN_FLUX))
    assert math.isnan(flat.scale) and math.isnan(flat.fraction)
    few = signal_recovery(TIME[:5], true[:5], true[:5])
    assert math.isnan(few.fraction)
    negative = signal_recovery(TIME, -true, true)
    assert math.isnan(negative.fraction)
    # An unknown contamination leaves the fraction undefined but the scale measured.
    unknown = signal_recovery(TIME, true, true, contamination=math.nan)
    assert unknown.scale == pytest.approx(1.0, abs=1e-3)
    assert math.isnan(unknown.fraction)
    # Non-finite cadences are left out.
    holes = true.copy()
    holes[::7] = np.nan
    assert signal_recovery(TIME, holes, true).fraction == pytest.approx(1.0, abs=1e-3)
