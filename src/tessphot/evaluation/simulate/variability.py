"""Injected stellar variability: sinusoids, transits, eclipsing binaries and red noise.

Every signal is a deterministic function of time, so the truth (the flux averaged over each
exposure) can be evaluated exactly and at any time resolution.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tessphot.config.simulate import DEFAULT_RED_NOISE_MAX

#: Signal kinds (stored as integers in the truth file).
CONSTANT, SINUSOID, TRANSIT, ECLIPSING_BINARY, RED_NOISE = range(5)
KIND_NAMES = {
    CONSTANT: "constant",
    SINUSOID: "sinusoid",
    TRANSIT: "transit",
    ECLIPSING_BINARY: "eclipsing_binary",
    RED_NOISE: "red_noise",
}
#: Share of each kind among the variable stars.
KIND_SHARES = {SINUSOID: 0.4, TRANSIT: 0.2, ECLIPSING_BINARY: 0.15, RED_NOISE: 0.25}
#: Semi-amplitude range of sinusoids (relative flux, log-uniform): 100 ppm to 5 %.
SINUSOID_AMPLITUDE = (1e-4, 5e-2)
#: Period range of sinusoids [d] (log-uniform).
SINUSOID_PERIOD = (0.1, 10.0)
#: Transit depth (log-uniform), period [d] and duration [h] ranges.
TRANSIT_DEPTH = (1e-3, 2e-2)
TRANSIT_PERIOD = (1.0, 10.0)
TRANSIT_DURATION_H = (1.0, 6.0)
#: Eclipsing binaries: primary depth, secondary/primary depth ratio, period [d], duration [h].
EB_DEPTH = (0.05, 0.4)
EB_SECONDARY_RATIO = (0.1, 1.0)
EB_PERIOD = (0.5, 10.0)
EB_DURATION_H = (2.0, 8.0)
#: Fraction of an eclipse spent in ingress or egress.
INGRESS_FRACTION = 0.15
#: Red noise: least rms (relative flux; drawn log-uniform up to the setting
#: ``red_noise_max``) and Harvey timescale [d] range.
RED_NOISE_RMS_MIN = 1e-4
RED_NOISE_TAU = (0.1, 2.0)
#: Red noise is a sum of this many sinusoids with a Harvey power spectrum...
RED_NOISE_COMPONENTS = 40
#: ...spread logarithmically over this frequency range [1/d].
RED_NOISE_FREQ = (1.0 / 30.0, 24.0)
#: Sub-samples per exposure used to average signals over the exposure.
SUPERSAMPLE = 9

SIGNAL_DTYPE = np.dtype(
    [
        ("kind", "i1"),
        ("amplitude", "f8"),  # sinusoid semi-amplitude, eclipse depth or red-noise rms
        ("period", "f8"),  # [d]
        ("epoch", "f8"),  # phase zero / mid-eclipse [TJD]
        ("duration", "f8"),  # eclipse duration [d]
        ("secondary", "f8"),  # secondary-eclipse depth (eclipsing binaries)
        ("tau", "f8"),  # red-noise timescale [d]
        ("seed", "i8"),  # red-noise component seed
    ]
)


@dataclass
class Signals:
    """The injected signal of every star (a structured array with :data:`SIGNAL_DTYPE`)."""

    table: np.ndarray

    def __post_init__(self):
        # Red-noise components are drawn once per star and kept.
        red = self.table[self.table["kind"] == RED_NOISE]
        comps = [red_noise_components(r["amplitude"], r["tau"], int(r["seed"])) for r in red]
        self._red = (
            np.array([c[0] for c in comps]).reshape(-1, RED_NOISE_COMPONENTS),
            np.array([c[1] for c in comps]).reshape(-1, RED_NOISE_COMPONENTS),
            np.array([c[2] for c in comps]).reshape(-1, RED_NOISE_COMPONENTS),
        )

    def relative_flux(self, t: np.ndarray) -> np.ndarray:
        """Flux relative to the mean star flux at times ``t`` [TJD], shape (n_stars, n_t)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        tab = self.table
        out = np.ones((tab.size, t.size))
        for kind, fn in (
            (SINUSOID, _sinusoid),
            (TRANSIT, _transit),
            (ECLIPSING_BINARY, _eclipsing_binary),
            (RED_NOISE, self._red_noise),
        ):
            idx = np.flatnonzero(tab["kind"] == kind)
            if idx.size:
                out[idx] += fn(tab[idx], t)
        return out

    def _red_noise(self, tab, t):
        freq, amp, phase = self._red
        arg = 2 * np.pi * freq[:, :, None] * t[None, None, :] + phase[:, :, None]
        return (amp[:, :, None] * np.sin(arg)).sum(axis=1)

    def exposure_average(self, tstart: float, tstop: float) -> np.ndarray:
        """Relative flux averaged over the exposure ``[tstart, tstop]`` [TJD], shape (n,)."""
        sub = tstart + (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE * (tstop - tstart)
        return self.relative_flux(sub).mean(axis=1)


def _loguniform(rng: np.random.Generator, bounds: tuple[float, float], n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), n))


def draw_signals(
    rng: np.random.Generator,
    n: int,
    variable_fraction: float,
    t0: float,
    *,
    red_noise_max: float = DEFAULT_RED_NOISE_MAX,
) -> Signals:
    """Draw the signals of ``n`` stars, a fraction ``variable_fraction`` of them variable.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator.
    n : int
        Number of stars.
    variable_fraction : float
        Fraction of variable stars (0-1).
    t0 : float
        A time near the start of the data [TJD]; epochs are drawn within one period of it.
    red_noise_max : float
        Largest red-noise rms (relative flux; drawn log-uniform from
        :data:`RED_NOISE_RMS_MIN`).

    Returns
    -------
    Signals
    """
    tab = np.zeros(n, dtype=SIGNAL_DTYPE)
    variable = rng.uniform(size=n) < variable_fraction
    kinds = np.array(list(KIND_SHARES))
    shares = np.array(list(KIND_SHARES.values()))
    tab["kind"][variable] = rng.choice(kinds, size=variable.sum(), p=shares / shares.sum())
    for kind in kinds:
        idx = np.flatnonzero(tab["kind"] == kind)
        m = idx.size
        if kind == SINUSOID:
            tab["amplitude"][idx] = _loguniform(rng, SINUSOID_AMPLITUDE, m)
            tab["period"][idx] = _loguniform(rng, SINUSOID_PERIOD, m)
        elif kind == TRANSIT:
            tab["amplitude"][idx] = _loguniform(rng, TRANSIT_DEPTH, m)
            tab["period"][idx] = rng.uniform(*TRANSIT_PERIOD, m)
            tab["duration"][idx] = rng.uniform(*TRANSIT_DURATION_H, m) / 24.0
        elif kind == ECLIPSING_BINARY:
            tab["amplitude"][idx] = rng.uniform(*EB_DEPTH, m)
            tab["secondary"][idx] = tab["amplitude"][idx] * rng.uniform(*EB_SECONDARY_RATIO, m)
            tab["period"][idx] = rng.uniform(*EB_PERIOD, m)
            tab["duration"][idx] = rng.uniform(*EB_DURATION_H, m) / 24.0
        elif kind == RED_NOISE:
            tab["amplitude"][idx] = _loguniform(rng, (RED_NOISE_RMS_MIN, red_noise_max), m)
            tab["tau"][idx] = _loguniform(rng, RED_NOISE_TAU, m)
            tab["seed"][idx] = rng.integers(0, 2**62, m)
        tab["epoch"][idx] = t0 + rng.uniform(0, 1, m) * np.where(
            tab["period"][idx] > 0, tab["period"][idx], 1.0
        )
    return Signals(tab)


#: Fields a chosen signal must give, per kind (the others default to 0; see
#: :func:`chosen_signal`).
REQUIRED_FIELDS = {
    CONSTANT: (),
    SINUSOID: ("amplitude", "period"),
    TRANSIT: ("amplitude", "period", "duration"),
    ECLIPSING_BINARY: ("amplitude", "period", "duration"),
    RED_NOISE: ("amplitude", "tau"),
}


def chosen_signal(spec: Mapping[str, Any], t0: float, rng: np.random.Generator) -> np.void:
    """One star's signal given as a mapping, in place of its drawn one.

    Parameters
    ----------
    spec : mapping
        ``kind`` (a name of :data:`KIND_NAMES` or its number) and fields of
        :data:`SIGNAL_DTYPE` (``amplitude``, ``period`` [d], ``epoch`` [TJD], ``duration``
        [d], ``secondary``, ``tau`` [d], ``seed``). Fields not given are 0, but for
        ``epoch`` and a red noise's ``seed``, drawn.
    t0 : float
        The time the epochs are drawn from [TJD] (as :func:`draw_signals`).
    rng : numpy.random.Generator
        Draws a missing epoch as usual, uniformly within one period after ``t0``, and a red
        noise's missing seed (a generator of the star's own, so that the simulation's
        draws stay the same).

    Returns
    -------
    numpy.void
        The chosen signal (a row of :data:`SIGNAL_DTYPE`).

    Raises
    ------
    ValueError
        For an unknown kind or field, a missing required field, or a period, duration or
        timescale that is not positive.
    """
    names = {name: kind for kind, name in KIND_NAMES.items()}
    raw = spec.get("kind")
    kind = names.get(raw) if isinstance(raw, str) else raw
    if kind not in KIND_NAMES:
        raise ValueError(f"signal kind must be one of {', '.join(names)}, not {raw!r}")
    unknown = set(spec) - set(SIGNAL_DTYPE.names)
    if unknown:
        raise ValueError(f"unknown signal field(s) {', '.join(sorted(unknown))}")
    missing = [f for f in REQUIRED_FIELDS[kind] if f not in spec]
    if missing:
        raise ValueError(f"a {KIND_NAMES[kind]} signal needs {', '.join(missing)}")
    for name in ("period", "duration", "tau"):
        if name in spec and not float(spec[name]) > 0:
            raise ValueError(f"signal {name} must be positive, not {spec[name]!r}")
    row = np.zeros((), dtype=SIGNAL_DTYPE)
    for name in SIGNAL_DTYPE.names:
        if name != "kind" and name in spec:
            row[name] = spec[name]
    row["kind"] = kind
    if "epoch" not in spec:
        row["epoch"] = t0 + rng.uniform(0, 1) * (row["period"] if row["period"] > 0 else 1.0)
    if kind == RED_NOISE and "seed" not in spec:
        row["seed"] = rng.integers(0, 2**62)
    return row[()]


def chosen_signals(extra_stars) -> dict[int, Mapping[str, Any]]:
    """Star ID to the signal chosen for it: the optional fifth element of an extra star.

    Parameters
    ----------
    extra_stars : list
        ``SimulationConfig.extra_stars``: ``(starid, tmag, row, col[, signal])`` tuples.

    Returns
    -------
    dict
        The chosen signal specifications by star ID.

    Raises
    ------
    ValueError
        For an extra star of the wrong length or a signal that is not a mapping.
    """
    chosen = {}
    for star in extra_stars:
        if len(star) not in (4, 5):
            raise ValueError(
                f"an extra star is (starid, tmag, row, col[, signal]), not {tuple(star)!r}"
            )
        if len(star) == 5 and star[4] is not None:
            if not isinstance(star[4], Mapping):
                raise ValueError(f"the signal of extra star {star[0]} must be a mapping")
            chosen[int(star[0])] = star[4]
    return chosen


def with_chosen(
    signals: Signals,
    starids: np.ndarray,
    chosen: Mapping[int, Mapping[str, Any]],
    t0: float,
    seed: int,
) -> Signals:
    """The drawn signals with those of some stars replaced by chosen ones.

    Parameters
    ----------
    signals : Signals
        The drawn signals, one per star.
    starids : numpy.ndarray
        The stars' IDs, in the order of ``signals``.
    chosen : mapping
        Star ID to its signal (:func:`chosen_signal`).
    t0 : float
        The time the epochs are drawn from [TJD].
    seed : int
        The simulation's seed: a missing epoch is drawn by a generator seeded with it and
        the star's ID, apart from the simulation's own draws.

    Returns
    -------
    Signals
        ``signals`` itself when nothing is chosen, else new signals.
    """
    if not chosen:
        return signals
    table = signals.table.copy()
    index = {int(s): i for i, s in enumerate(starids)}
    for starid, spec in chosen.items():
        if int(starid) not in index:
            raise ValueError(f"no star {starid} for the chosen signal")
        i = index[int(starid)]
        own = np.random.default_rng([int(seed), int(starid)])
        table[i] = chosen_signal(spec, t0, own)
    return Signals(table)


def _sinusoid(tab, t):
    phase = (t[None, :] - tab["epoch"][:, None]) / tab["period"][:, None]
    return tab["amplitude"][:, None] * np.sin(2 * np.pi * phase)


def _eclipse(t, epoch, period, duration, depth):
    """Trapezoidal eclipses of the given depth (negative relative flux)."""
    phase = (t[None, :] - epoch[:, None]) / period[:, None]
    dt = np.abs(phase - np.round(phase)) * period[:, None]  # time from mid-eclipse [d]
    half = duration[:, None] / 2
    ingress = INGRESS_FRACTION * duration[:, None]
    shape = np.clip((half - dt) / ingress, 0.0, 1.0)
    return -depth[:, None] * shape


def _transit(tab, t):
    return _eclipse(t, tab["epoch"], tab["period"], tab["duration"], tab["amplitude"])


def _eclipsing_binary(tab, t):
    primary = _eclipse(t, tab["epoch"], tab["period"], tab["duration"], tab["amplitude"])
    secondary = _eclipse(
        t, tab["epoch"] + tab["period"] / 2, tab["period"], tab["duration"], tab["secondary"]
    )
    return primary + secondary


def red_noise_components(rms: float, tau: float, seed: int):
    """Frequencies [1/d], amplitudes and phases of one star's red-noise components."""
    rng = np.random.default_rng(seed)
    freq = np.geomspace(*RED_NOISE_FREQ, RED_NOISE_COMPONENTS)
    dlogf = np.log(freq[1] / freq[0])
    power = 1.0 / (1.0 + (2 * np.pi * freq * tau) ** 2) * freq * dlogf  # Harvey PSD x df
    amp = np.sqrt(2 * power / power.sum()) * rms * rng.rayleigh(1.0, freq.size) / np.sqrt(2)
    phase = rng.uniform(0, 2 * np.pi, freq.size)
    return freq, amp, phase
