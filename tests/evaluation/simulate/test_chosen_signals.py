"""Signals chosen for given stars (the fifth element of ``SimulationConfig.extra_stars``)."""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.config.simulate import SimulationConfig
from tessphot.evaluation.simulate import variability
from tessphot.evaluation.simulate.sector import simulate_sector
from tessphot.evaluation.simulate.truth import read_truth
from tessphot.geometry import sector_geometry

#: Two placed stars on a 16x16 crop: TIC, Tmag, science row and column.
SINE_STAR = (920_000_001, 9.0, 1020.3, 1019.6)
TRANSIT_STAR = (920_000_002, 10.0, 1027.8, 1028.4)
#: Short period [d] and a transit that falls within the eight 30-min cadences.
SINE = {"kind": "sinusoid", "amplitude": 0.01, "period": 0.15}
CADENCES = 8


def _config(extra_stars: list) -> SimulationConfig:
    return SimulationConfig(
        size=16,
        cadences=CADENCES,
        stars=6,
        bright=0,
        seed=21,
        variable_fraction=0.5,
        compress=False,
        extra_stars=extra_stars,
    )


@pytest.fixture(scope="module")
def chosen_and_drawn(tmp_path_factory):
    """The same simulation twice: with chosen signals for the two stars, and without."""
    drawn_dir = tmp_path_factory.mktemp("drawn")
    drawn = simulate_sector(_config([SINE_STAR, TRANSIT_STAR]), drawn_dir, progress=False)
    drawn_truth = read_truth(drawn["truth"])
    # A transit of 2 h centred on the fifth cadence.
    mid = float(drawn_truth["tmid"][4])
    transit = {
        "kind": "transit",
        "amplitude": 0.02,
        "period": 2.5,
        "duration": 2 / 24,
        "epoch": mid,
    }
    chosen_dir = tmp_path_factory.mktemp("chosen")
    chosen = simulate_sector(
        _config([(*SINE_STAR, SINE), (*TRANSIT_STAR, transit)]), chosen_dir, progress=False
    )
    return read_truth(chosen["truth"]), drawn_truth, transit


def _index(truth, starid: int) -> int:
    return int(np.flatnonzero(truth["stars"]["starid"] == starid)[0])


def test_truth_flux_follows_the_chosen_signal(chosen_and_drawn):
    truth, _, transit = chosen_and_drawn
    kinds = {v: k for k, v in variability.KIND_NAMES.items()}
    for star, spec in ((SINE_STAR, SINE), (TRANSIT_STAR, transit)):
        i = _index(truth, star[0])
        row = truth["signals"][i]
        assert row["kind"] == kinds[spec["kind"]]
        for name, value in spec.items():
            if name != "kind":
                assert row[name] == pytest.approx(value)
        # The truth flux is the mean flux times the chosen signal averaged over each exposure.
        one = variability.Signals(truth["signals"][i : i + 1])
        expected = np.array(
            [
                one.exposure_average(a, b)[0]
                for a, b in zip(truth["tstart"], truth["tstop"], strict=True)
            ]
        )
        relative = truth["flux"][:, i] / truth["stars"]["flux"][i]
        np.testing.assert_allclose(relative, expected, rtol=1e-12)
    sine = truth["flux"][:, _index(truth, SINE_STAR[0])]
    # Eight cadences cover 1.1 periods: the flux swings by about the full 2 % peak to peak.
    assert np.ptp(sine) / np.mean(sine) > 0.015
    j = _index(truth, TRANSIT_STAR[0])
    dip = truth["flux"][:, j] / truth["stars"]["flux"][j]
    assert dip[4] == pytest.approx(1 - transit["amplitude"], abs=2e-3)
    assert dip[0] == dip[-1] == 1.0


def test_chosen_signals_leave_the_rest_of_the_simulation_alone(chosen_and_drawn):
    """Every other star keeps its drawn signal and flux; a missing epoch keeps the drawn
    phase (no new random draw)."""
    truth, drawn, _ = chosen_and_drawn
    np.testing.assert_array_equal(truth["stars"], drawn["stars"])
    mine = {_index(truth, SINE_STAR[0]), _index(truth, TRANSIT_STAR[0])}
    others = np.array([i for i in range(truth["stars"].size) if i not in mine])
    np.testing.assert_array_equal(truth["signals"][others], drawn["signals"][others])
    np.testing.assert_array_equal(truth["flux"][:, others], drawn["flux"][:, others])
    np.testing.assert_array_equal(truth["background"], drawn["background"])
    # The sine star's epoch was not given: drawn within one period of the sector epoch.
    t0 = sector_geometry(1, 1, 4).reference_tjd
    epoch = truth["signals"][_index(truth, SINE_STAR[0])]["epoch"]
    assert t0 <= epoch <= t0 + SINE["period"]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"kind": "wobble", "amplitude": 0.01}, "kind"),
        ({"kind": "transit", "amplitude": 0.01, "period": 2.0}, "duration"),
        ({"kind": "sinusoid", "amplitude": 0.01, "period": 0.0}, "positive"),
        ({"kind": "sinusoid", "amplitude": 0.01, "period": 1.0, "phase": 0.3}, "phase"),
    ],
)
def test_bad_chosen_signals_are_refused(spec, match):
    with pytest.raises(ValueError, match=match):
        variability.chosen_signal(spec, 1000.0, np.random.default_rng(0))


def test_extra_star_signal_must_be_a_mapping(tmp_path):
    with pytest.raises(ValueError, match="mapping"):
        simulate_sector(_config([(*SINE_STAR, "sinusoid")]), tmp_path, progress=False)
    assert not list(tmp_path.rglob("*.fits*"))
