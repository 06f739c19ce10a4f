"""Issue 14's check of the variable stars under half their optimal aperture."""

from __future__ import annotations

import math

from tessphot.evaluation.scoring.sector import TargetScore
from tessphot.evaluation.scoring.small_apertures import small_aperture_check


def _star(own: float, optimal: float, std: tuple[float, float] = (1.0, 1.0)) -> TargetScore:
    score = TargetScore(starid=1, tmag=14.0, status="OK", contamination=0.1, mask_size=2.0)
    score.rms_hour_neighbours = own
    score.optimal_ap_rms_hour_neighbours = optimal
    score.std_hour_neighbours, score.optimal_ap_std_hour_neighbours = std
    return score


def test_check_counts_the_stars_measured_worse_than_the_optimal_aperture():
    check = small_aperture_check([_star(1.0, 1.2), _star(1.3, 1.1), _star(1.0, math.nan)])
    assert check["value"] == 1 and check["met"] is False
    assert "(2)" in check["what"] and "standard deviation: 0)" in check["what"]
    # The standard deviation's count is shown, the robust rms's judged.
    check = small_aperture_check([_star(1.3, 1.1, (1.0, 1.2)), _star(1.0, 1.2, (1.3, 1.1))])
    assert check["value"] == 1 and "standard deviation: 1)" in check["what"]
    assert small_aperture_check([_star(1.0, 1.2)])["met"] is True
    # No star compared: nothing to judge.
    assert small_aperture_check([_star(1.0, math.nan)])["met"] is None
