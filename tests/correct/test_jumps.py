"""Jumps left in the corrected flux: found where injected, corrected and flagged; none in
white noise (at the rate designed), transits, sinusoids or a slow red-noise wander."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tessphot.config.correct import JumpSettings
from tessphot.config.fields import SettingsError
from tessphot.correct.jumps import (
    MEDIAN_VARIANCE,
    find_jumps,
    jump_quality,
    remove_jumps,
    window_medians,
)
from tessphot.correct.quality import QUALITY_JUMP_ADDITIVE_CONSTANT

#: The synthetic light curve: cadences of 30 min [d], a one-day gap half-way.
N_CADENCES = 1300
CADENCE = 1.0 / 48.0
GAP_DAYS = 1.0
SIGMA = 1e-3


def _light_curve(seed: int, sigma: float = SIGMA):
    """Times [d], white noise and the usable rows (the gap's out) of one light curve."""
    rng = np.random.default_rng(seed)
    time = 1325.0 + np.arange(N_CADENCES) * CADENCE
    start = time[N_CADENCES // 2]
    usable = ~((time > start) & (time < start + GAP_DAYS))
    return rng, time, rng.normal(0.0, sigma, N_CADENCES), usable


def _first_after_gap(usable: np.ndarray) -> int:
    rows = np.flatnonzero(usable)
    return int(rows[np.flatnonzero(np.diff(rows) > 1)[0] + 1])


def _level_difference(flux, usable, row, days=1.0):
    """Median of the day after ``row`` minus the day before, and its white-noise error."""
    n = int(days / CADENCE)
    rows = np.flatnonzero(usable)
    k = np.searchsorted(rows, row)
    before, after = flux[rows[k - n : k]], flux[rows[k : k + n]]
    error = np.sqrt(MEDIAN_VARIANCE * 2.0 / n) * SIGMA
    return float(np.median(after) - np.median(before)), error


def test_window_medians_match_numpy():
    values = np.random.default_rng(0).normal(size=50)
    lo = np.array([0, 5, 10, 20, 49])
    hi = np.array([10, 6, 10, 45, 50])
    expected = [np.median(values[a:b]) if b > a else np.nan for a, b in zip(lo, hi, strict=True)]
    np.testing.assert_allclose(window_medians(values, lo, hi), expected)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_step_is_found_corrected_and_flagged(seed):
    _, time, flux, usable = _light_curve(seed)
    step = 5 * SIGMA
    flux[400:] += step
    (jump,) = find_jumps(flux, time, usable=usable)
    assert abs(jump.row - 400) <= 1 and jump.first <= jump.row
    assert jump.size == pytest.approx(step, abs=4 * np.sqrt(MEDIAN_VARIANCE / 24) * SIGMA)
    corrected = remove_jumps(flux, [jump])
    difference, error = _level_difference(corrected, usable, 400)
    assert abs(difference) < 3 * error
    quality = jump_quality(flux.size, [jump])
    flagged = np.flatnonzero(quality)
    assert flagged.tolist() == list(range(jump.first, jump.row + 1))
    assert set(quality[flagged]) == {QUALITY_JUMP_ADDITIVE_CONSTANT}
    # The earlier flux stays as it was.
    np.testing.assert_array_equal(corrected[: jump.first], flux[: jump.first])


def test_a_jump_at_a_momentum_dump():
    """A step of 3 sigma at a dump (whose cadence is not usable) is put at the dump."""
    for seed in range(5):
        _, time, flux, usable = _light_curve(seed)
        dumps = np.zeros(N_CADENCES, bool)
        dumps[np.arange(150, N_CADENCES, 250)] = True
        dumps[900] = True
        flux[901:] += 3 * SIGMA
        (jump,) = find_jumps(flux, time, usable=usable & ~dumps, dumps=dumps)
        assert jump.row == 901 and jump.first == 900 and jump.at_dump and not jump.at_gap


def test_a_jump_just_after_the_gap():
    for seed in range(5):
        _, time, flux, usable = _light_curve(seed)
        first = _first_after_gap(usable)
        flux[first:] -= 6 * SIGMA
        (jump,) = find_jumps(flux, time, usable=usable)
        assert jump.row == first and jump.at_gap and jump.size < 0
        difference, error = _level_difference(remove_jumps(flux, [jump]), usable, first)
        assert abs(difference) < 3 * error


def test_the_largest_jump_first_and_at_most_max_jumps():
    _, time, flux, usable = _light_curve(7)
    flux[300:] += 4 * SIGMA
    flux[1000:] -= 8 * SIGMA
    jumps = find_jumps(flux, time, usable=usable)
    assert [j.row for j in jumps] == [1000, 300]
    corrected = remove_jumps(flux, jumps)
    for row in (300, 1000):
        difference, error = _level_difference(corrected, usable, row)
        assert abs(difference) < 3 * error
    (only,) = find_jumps(flux, time, usable=usable, settings=JumpSettings(max_jumps=1))
    assert only.row == 1000


def test_white_noise_gives_false_jumps_at_most_at_the_rate_designed():
    """Bonferroni over overlapping windows, and the flatness and trend tests, keep the
    false-alarm rate under ``false_alarm``: at a loose 0.2, no more than a binomial allows;
    at the default 0.001, none in 100 light curves."""
    loose = JumpSettings(false_alarm=0.2)
    seeds = range(100, 200)
    false = default = 0
    for seed in seeds:
        _, time, flux, usable = _light_curve(seed)
        dumps = np.zeros(N_CADENCES, bool)
        dumps[np.arange(150, N_CADENCES, 250)] = True
        false += bool(find_jumps(flux, time, usable=usable, dumps=dumps, settings=loose))
        default += bool(find_jumps(flux, time, usable=usable, dumps=dumps))
    assert false <= stats.binom.ppf(0.999, len(seeds), loose.false_alarm)
    assert default == 0


def _transits(time, depth=0.01, duration_hours=3.0, period=3.7):
    phase = ((time - 1325.3) / period) % 1.0 * period
    return -depth * (phase < duration_hours / 24.0)


def _wander(rng, time, amplitude, days):
    """A slow red-noise wander: white noise smoothed by a Gaussian of ``days``."""
    offsets = np.arange(-4 * days, 4 * days + CADENCE / 2, CADENCE)
    kernel = np.exp(-0.5 * (offsets / days) ** 2)
    smooth = np.convolve(rng.normal(size=time.size), kernel, mode="same")
    return amplitude * smooth / smooth.std()


def _random_walk(rng, time, amplitude, days):
    """A red noise rough on every scale (Ornstein-Uhlenbeck, time scale ``days``)."""
    decay = np.exp(-CADENCE / days)
    kicks = rng.normal(size=time.size) * np.sqrt(1 - decay**2)
    out = np.zeros(time.size)
    for i in range(1, time.size):
        out[i] = decay * out[i - 1] + kicks[i]
    return amplitude * out


def _signal(name, rng, time, sigma, seed):
    """The astrophysical (or red-noise) signal ``name`` [relative flux]."""
    if name == "transits":  # 1 %, 3 h, every 3.7 d
        return _transits(time)
    if name == "long transits":
        return _transits(time, duration_hours=10.0, period=4.7)
    if name.startswith("sinusoid"):  # 5 %, periods 0.5 and 5 d
        period = 0.5 if "0.5" in name else 5.0
        return 0.05 * np.sin(2 * np.pi * time / period + seed)
    if name == "wander":
        return _wander(rng, time, 5 * sigma, 1.0)
    return _random_walk(rng, time, 5 * sigma, 2.0)


@pytest.mark.parametrize("sigma", [1e-3, 1e-4])
@pytest.mark.parametrize(
    "signal",
    ["transits", "long transits", "sinusoid 0.5 d", "sinusoid 5 d", "wander", "random walk"],
)
def test_no_jump_in_astrophysics(signal, sigma):
    for seed in range(6):
        rng, time, noise, usable = _light_curve(seed, sigma)
        flux = noise + _signal(signal, rng, time, sigma, seed)
        assert find_jumps(flux, time, usable=usable) == [], f"seed {seed}"


def test_a_jump_in_a_transiting_star_is_still_found():
    _, time, flux, usable = _light_curve(11)
    flux += _transits(time, period=5.3)
    flux[1000:] += 6 * SIGMA
    (jump,) = find_jumps(flux, time, usable=usable)
    assert abs(jump.row - 1000) <= 1


def test_settings_are_checked():
    with pytest.raises(SettingsError, match="window"):
        JumpSettings.from_mapping({"window": 3.0})
    with pytest.raises(SettingsError, match="false_alarm"):
        JumpSettings.from_mapping({"false_alarm": 0.0})
    assert JumpSettings.from_mapping({"enabled": False}).enabled is False
