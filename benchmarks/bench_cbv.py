"""Speed of the CBV corrections on one core (run by hand).

``python benchmarks/bench_cbv.py [--stars 5000] [--cadences 1300] [--fits 1000]``

Targets: the CBVs of 5 000 stars x 1 300 cadences in under 30 s, and at least 500 fits per
second (least squares; MAP with a neighbour prior is timed too, prior included). BLAS runs
on one thread. The light curves are synthetic: three common trends with coefficients smooth
over the CCD, a spike on each momentum dump, white noise, and sinusoids on a tenth of the
stars.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from tessphot.config.correct import FitSettings
from tessphot.correct.cbv import build_cbvs
from tessphot.correct.fit import NeighbourPriors, fit_cbvs

#: Targets: seconds for the CBVs, fits per second.
TARGET_CBV_SECONDS = 30.0
TARGET_FITS_PER_SECOND = 500.0
#: Cadence [s].
CADENCE = 1800.0


def synthetic(n_stars: int, n_cadences: int, seed: int = 1) -> dict:
    """Raw fluxes of a synthetic CBV area and what the fits need."""
    rng = np.random.default_rng(seed)
    time_ = 1325.3 + np.arange(n_cadences) * CADENCE / 86400.0
    half = n_cadences // 2
    good = np.ones(n_cadences, bool)
    good[half - 20 : half + 20] = False
    orbit = np.arange(n_cadences) >= half
    dumps = np.zeros(n_cadences, bool)
    dumps[100::150] = True
    thermal = np.where(
        orbit, np.exp(-(time_ - time_[half]) / 1.5), np.exp(-(time_ - time_[0]) / 1.5)
    )
    drift = np.where(orbit, time_ - time_[half:].mean(), time_ - time_[:half].mean()) / 7.0
    steps = rng.normal(size=n_cadences)[np.cumsum(dumps)]
    trends = np.column_stack([thermal, drift, steps])
    rows, cols = rng.uniform(0, 2048, (2, n_stars))
    u, v = rows / 2048 - 0.5, cols / 2048 - 0.5
    coeffs = np.column_stack([-(0.3 + u**2 + v**2), 2 * v + 0.5 * u, 2 * u - 0.3 * v]) * [
        3e-3,
        1.5e-3,
        8e-4,
    ]
    tmags = rng.uniform(8, 14, n_stars)
    noise = 1e-4 * 10 ** (0.2 * (tmags - 10))
    relative = coeffs @ trends.T + np.outer(
        2e-3 * (0.5 + u), dumps * rng.uniform(0.5, 1.5, n_cadences)
    )
    relative += rng.normal(size=(n_stars, n_cadences)) * noise[:, None]
    variable = rng.random(n_stars) < 0.1
    periods = 10 ** rng.uniform(-1, 1, variable.sum())
    relative[variable] += 2e-3 * np.sin(2 * np.pi * time_[None, :] / periods[:, None])
    flux = 1e5 * 10 ** (-0.4 * (tmags[:, None] - 10)) * (1 + relative)
    flux[:, ~good] = np.nan
    return {
        "flux": flux, "good": good, "time": time_, "dumps": dumps, "rows": rows, "cols": cols,
        "tmags": tmags, "cadenceno": np.arange(n_cadences) + 4697,
    }  # fmt: skip


def main() -> None:
    """Time the CBVs and the fits, and print the verdicts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stars", type=int, default=5000, help="stars of the CBV area")
    parser.add_argument("--cadences", type=int, default=1300, help="cadences")
    parser.add_argument("--fits", type=int, default=1000, help="stars fitted (each way)")
    args = parser.parse_args()
    data = synthetic(args.stars, args.cadences)
    with threadpool_limits(1):
        start = time.perf_counter()
        cbvs = build_cbvs(
            data["flux"], good=data["good"], cadenceno=data["cadenceno"], time=data["time"],
            dumps=data["dumps"], cadence=CADENCE,
        )  # fmt: skip
        cbv_seconds = time.perf_counter() - start
        stars = np.arange(min(args.fits, args.stars))
        start = time.perf_counter()
        fits = [fit_cbvs(data["flux"][i], cbvs, good=data["good"]) for i in stars]
        ls_rate = len(stars) / (time.perf_counter() - start)
        settings = FitSettings()
        coefficients = np.array([fit.ls_coefficients for fit in fits])
        sel = (data["rows"][stars], data["cols"][stars], data["tmags"][stars])
        start = time.perf_counter()
        priors = NeighbourPriors(*sel, coefficients, settings=settings)
        for i in stars:
            prior = priors.prior(sel[0][i], sel[1][i], sel[2][i], exclude=int(i))
            fit_cbvs(data["flux"][i], cbvs, good=data["good"], prior=prior, settings=settings)
        map_rate = len(stars) / (time.perf_counter() - start)
    verdict = "PASS" if cbv_seconds < TARGET_CBV_SECONDS else "FAIL"
    print(
        f"CBVs of {args.stars} stars x {args.cadences} cadences: {cbv_seconds:.1f} s "
        f"({cbvs.n_vectors} vectors, {cbvs.n_spikes} spike vectors, {cbvs.n_stars} stars used; "
        f"target < {TARGET_CBV_SECONDS:.0f} s: {verdict})"
    )
    for name, rate in (("least-squares", ls_rate), ("MAP (prior included)", map_rate)):
        verdict = "PASS" if rate >= TARGET_FITS_PER_SECOND else "FAIL"
        print(
            f"{name} fits: {rate:.0f} stars/s on one core "
            f"(target >= {TARGET_FITS_PER_SECOND:.0f}: {verdict})"
        )


if __name__ == "__main__":
    main()
