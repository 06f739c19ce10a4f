"""Issue 14's check of the variable stars under half their optimal aperture."""

from __future__ import annotations

import math

import numpy as np

from tessphot.evaluation.scoring.optimal import full_bin_rms, paired_excess
from tessphot.evaluation.scoring.sector import TargetScore
from tessphot.evaluation.scoring.small_apertures import WORSE_SIGMA, small_aperture_check


def _star(
    own: float, optimal: float, std: tuple[float, float] = (1.0, 1.0), sigma: float = 0.0
) -> TargetScore:
    score = TargetScore(starid=1, tmag=14.0, status="OK", contamination=0.1, mask_size=2.0)
    score.rms_hour_neighbours = own
    score.optimal_ap_rms_hour_neighbours = optimal
    score.std_hour_neighbours, score.optimal_ap_std_hour_neighbours = std
    score.optimal_ap_excess_sigma = sigma
    return score


def test_check_counts_the_stars_measured_worse_than_the_optimal_aperture():
    check = small_aperture_check(
        [_star(1.0, 1.2, sigma=-3.0), _star(1.3, 1.1, sigma=2.5), _star(1.0, math.nan)]
    )
    assert check["value"] == 1 and check["met"] is False
    assert (
        "(2)" in check["what"] and "robust rms: 1, by the standard deviation: 0)" in (check["what"])
    )
    # Estimated worse by either rms, but within the paired comparison's errors: not
    # measured worse.
    check = small_aperture_check(
        [_star(1.3, 1.1, (1.0, 1.2), sigma=1.5), _star(1.0, 1.2, (1.3, 1.1), sigma=1.9)]
    )
    assert check["value"] == 0 and check["met"] is True
    assert "robust rms: 1, by the standard deviation: 1)" in check["what"]
    # The aperture is judged where its own sum is known: a light curve worse than the
    # optimal sum only through the rest of the photometry is not a small aperture's fault.
    lc_only, aperture = _star(1.3, 1.1, sigma=3.0), _star(1.0, 1.1, sigma=-1.0)
    lc_only.own_ap_excess_sigma, aperture.own_ap_excess_sigma = 0.0, 2.5
    check = small_aperture_check([lc_only, aperture])
    assert check["value"] == 1 and check["met"] is False
    assert "the optimal sum: 1;" in check["what"]
    # No star compared: nothing to judge.
    assert small_aperture_check([_star(1.0, math.nan)])["met"] is None


def test_paired_excess_sees_a_neighbours_eclipse_and_not_noise():
    """Two apertures of one star: shared noise cancels; an eclipse the robust rms misses
    counts; equal independent noise is within a few standard errors."""
    rng = np.random.default_rng(3)
    cadence = 0.5 / 24
    t = np.arange(1200) * cadence
    shared = rng.standard_normal(t.size)
    small = shared + 0.5 * rng.standard_normal(t.size)
    large = shared + 0.5 * rng.standard_normal(t.size)
    hour = 1 / 24
    assert abs(paired_excess(t, small, large, hour, cadence)) < 3.0
    # A neighbour's 3-hour eclipses every 4 days in the larger aperture: its robust rms
    # hardly moves.
    eclipsed = large - 8.0 * (((t % 4.0) > 1.0) & ((t % 4.0) < 1.125))
    assert paired_excess(t, small, eclipsed, hour, cadence) < -WORSE_SIGMA
    assert full_bin_rms(t, eclipsed, hour, cadence) < 1.05 * full_bin_rms(t, large, hour, cadence)
    # Twice the independent noise: clearly worse.
    noisy = shared + 1.0 * rng.standard_normal(t.size)
    assert paired_excess(t, noisy, large, hour, cadence) > 5.0
    # Too few bins or no spread: no verdict.
    assert math.isnan(paired_excess(t[:3], small[:3], large[:3], hour, cadence))
    assert math.isnan(paired_excess(t, small, small, hour, cadence))
