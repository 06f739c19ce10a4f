"""Issue 14's precision tables of a scored sector (:mod:`tessphot.evaluation.scoring.sector`).

Per Tmag bin, for constant and variable stars and for isolated and crowded ones: the median
and 90th percentile of the 1-hour noise over the S/N-optimal aperture's limit, the median
30-minute ratio (the slow term shows as a 1-hour ratio above the 30-minute one), today's
own-aperture ratio, the apertures' sizes, and the fraction of stars with an aperture under
half the optimal size. Then the recovered sinusoid amplitudes and transit depths, the
targets of the issue, and the common mode per orbit: the median over the quiet stars of
their residuals (and of the flux error their background estimate alone makes), each in
units of the star's 30-minute noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict

import numpy as np

from tessphot.evaluation.scoring.corrected_report import corrections_report, format_corrections
from tessphot.evaluation.scoring.optimal import full_bin_rms
from tessphot.evaluation.scoring.photometry import TMAG_BINS
from tessphot.evaluation.scoring.sector import SectorScore, TargetScore
from tessphot.evaluation.scoring.sector_lightcurve import without_motion
from tessphot.evaluation.scoring.small_apertures import small_aperture_check
from tessphot.lightcurve.diagnostics import HOUR_SECONDS

#: One hour [d].
HOUR_DAYS = HOUR_SECONDS / 86400.0

#: Targets of issue 14: isolated Tmag 8-14 stars at most 1.05 in every bin, Tmag 6-8 at
#: most 1.10, the 90th percentile of every bin at most 1.3, signals within 1 %.
TARGETS = (((8.0, 14.0), 1.05), ((6.0, 8.0), 1.10))
TARGET_P90 = 1.3
TARGET_SIGNAL = 0.01
#: Percentile reported beside the median.
PERCENTILE = 90


def _values(stars: Iterable[TargetScore], get: Callable[[TargetScore], float]) -> np.ndarray:
    values = np.array([get(s) for s in stars], dtype=float)
    return values[np.isfinite(values)]


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else math.nan


def group_stats(stars: Sequence[TargetScore]) -> dict[str, float]:
    """The statistics of one group of stars (one cell of the table).

    Parameters
    ----------
    stars : sequence of TargetScore
        The group.

    Returns
    -------
    dict
        ``n`` (stars with a 1-hour ratio), ``median`` and ``p90`` of the 1-hour ratio to
        the optimal limit, ``p90_neighbours`` (the same with the neighbours' variable light
        left in the residual), ``median_30min``, ``plain_median`` (the plain 1-hour rms, partly
        filled bins as they are), ``own_median`` (today's yardstick),
        ``npix`` and ``optimal_npix`` (medians), ``small_fraction`` (of the stars with both
        sizes, those under half the optimal size).
    """
    ratios = _values(stars, lambda s: s.ratio_hour)
    left_in = _values(stars, lambda s: s.rms_hour_neighbours / s.limit_hour)
    sized = [s for s in stars if math.isfinite(s.mask_size) and math.isfinite(s.optimal_npix)]
    return {
        "n": int(ratios.size),
        "median": _median(ratios),
        "p90": float(np.percentile(ratios, PERCENTILE)) if ratios.size else math.nan,
        "p90_neighbours": (float(np.percentile(left_in, PERCENTILE)) if left_in.size else math.nan),
        "median_30min": _median(_values(stars, lambda s: s.ratio_30min)),
        "plain_median": _median(_values(stars, lambda s: s.plain_ratio_hour)),
        "own_median": _median(_values(stars, lambda s: s.own_ratio_hour)),
        "npix": _median(_values(stars, lambda s: s.mask_size)),
        "optimal_npix": _median(_values(stars, lambda s: s.optimal_npix)),
        "small_fraction": (
            sum(s.small_aperture for s in sized) / len(sized) if sized else math.nan
        ),
    }


def bin_table(score: SectorScore, bins: Sequence[float] = TMAG_BINS) -> list[dict]:
    """One row per Tmag bin and kind (constant, variable) with isolated and crowded stats.

    Parameters
    ----------
    score : SectorScore
        The scored sector.
    bins : sequence of float
        Edges of the Tmag bins.

    Returns
    -------
    list of dict
        ``tmag`` (lo, hi), ``kind``, ``isolated`` and ``crowded`` (:func:`group_stats`);
        bins without any star of the kind are left out.
    """
    rows = []
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        for variable in (False, True):
            group = [s for s in score.targets if lo <= s.tmag < hi and s.variable == variable]
            if not group:
                continue
            rows.append(
                {
                    "tmag": (lo, hi),
                    "kind": "variable" if variable else "constant",
                    "isolated": group_stats([s for s in group if not s.crowded]),
                    "crowded": group_stats([s for s in group if s.crowded]),
                }
            )
    return rows


def _spread(values: np.ndarray) -> dict[str, float]:
    values = values[np.isfinite(values)]
    if not values.size:
        return dict.fromkeys(("n", "median", "rms", "p05", "p95", "min", "max"), math.nan)
    return {
        "n": int(values.size),
        "median": float(np.median(values)),
        "rms": float(np.sqrt(np.mean(values**2))),
        "p05": float(np.percentile(values, 5)),
        "p95": float(np.percentile(values, 95)),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _column_median(matrix: np.ndarray) -> np.ndarray:
    """Median over the stars (columns) per cadence, NaN where no star has a value."""
    out = np.full(matrix.shape[0], math.nan)
    some = np.isfinite(matrix).any(axis=1)
    out[some] = np.nanmedian(matrix[some], axis=1)
    return out


def slow_term(score: SectorScore, mode: np.ndarray) -> dict[str, float]:
    """How much of the quiet stars' 1-hour noise does not average down, and what removes it.

    Each quiet star's residual is in units of its 30-minute noise, so the 1-hour robust rms
    (every bin scaled to a full one) of white noise is ``1 / sqrt(2)`` (0.71). The medians
    over the stars of the 1-hour rms:
    ``as_is``; ``own_background_removed`` (the residual minus the flux error of the star's
    own background estimate); ``motion_removed`` (less its fit by the star's true motion,
    :func:`~tessphot.evaluation.scoring.sector_lightcurve.without_motion`);
    ``background_and_motion_removed`` (both);
    ``common_mode_removed`` (minus the common mode ``mode``).

    Parameters
    ----------
    score : SectorScore
        The scored sector.
    mode : numpy.ndarray
        The common mode per cadence (NaN where unknown: those cadences are left out).

    Returns
    -------
    dict
        ``white`` and the medians named above.
    """
    t = np.asarray(score.tmid, dtype=float)
    cadence = float(np.median(np.diff(t))) if t.size > 1 else HOUR_DAYS
    no_background = score.quiet_flux - score.quiet_background

    def motion_free(matrix: np.ndarray) -> np.ndarray:
        columns = [
            without_motion(matrix[:, j], score.quiet_drow[:, j], score.quiet_dcol[:, j])
            for j in range(matrix.shape[1])
        ]
        return np.column_stack(columns) if columns else matrix

    variants = {
        "as_is": score.quiet_flux,
        "own_background_removed": no_background,
        "motion_removed": motion_free(score.quiet_flux),
        "background_and_motion_removed": motion_free(no_background),
        "common_mode_removed": score.quiet_flux - mode[:, None],
    }
    out = {"white": 1 / math.sqrt(2)}
    for name, matrix in variants.items():
        rms = [full_bin_rms(t, matrix[:, j], HOUR_DAYS, cadence) for j in range(matrix.shape[1])]
        out[name] = _median(_values_of(np.array(rms, dtype=float)))
    return out


def common_mode(score: SectorScore) -> dict:
    """The quiet stars' common mode per orbit.

    Parameters
    ----------
    score : SectorScore
        The scored sector.

    Returns
    -------
    dict
        ``stars`` (quiet stars), ``series`` (per cadence: ``tmid``, ``flux``, the median
        residual over the 30-min noise, ``background``, the median flux error of the
        background estimate in the same units, ``background_error`` and
        ``background_true``, medians over the stars [e-/s/px]), ``orbits``: per orbit the
        spread (:func:`_spread`) of ``flux``, ``background``, ``flux_minus_background``
        and ``background_error``, the correlation of ``flux`` and ``background``, and the
        median true sky; and ``slow_term`` (:func:`slow_term`).
    """
    series = {
        "tmid": np.asarray(score.tmid, dtype=float),
        "flux": _column_median(score.quiet_flux),
        "background": _column_median(score.quiet_background),
        "background_error": _column_median(score.background_error),
        "background_true": _column_median(score.background_true),
    }
    orbits = []
    for orbit in np.unique(score.orbit):
        on = score.orbit == orbit
        flux, bkg = series["flux"][on], series["background"][on]
        both = np.isfinite(flux) & np.isfinite(bkg)
        corr = (
            float(np.corrcoef(flux[both], bkg[both])[0, 1])
            if both.sum() > 2 and np.std(flux[both]) > 0 and np.std(bkg[both]) > 0
            else math.nan
        )
        orbits.append(
            {
                "orbit": int(orbit) + 1,
                "tmid": (float(series["tmid"][on].min()), float(series["tmid"][on].max())),
                "flux": _spread(flux),
                "background": _spread(bkg),
                "flux_minus_background": _spread(flux - bkg),
                "correlation": corr,
                "background_error": _spread(series["background_error"][on]),
                "background_true": _median(_values_of(series["background_true"][on])),
            }
        )
    return {
        "stars": int(score.quiet_flux.shape[1]),
        "series": series,
        "orbits": orbits,
        "slow_term": slow_term(score, series["flux"]),
    }


def _values_of(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def signals_summary(score: SectorScore) -> dict:
    """Recovered sinusoid amplitudes and transit depths (isolated and all stars).

    Returns
    -------
    dict
        Per ``amplitude`` and ``depth``, for ``isolated`` and ``all`` stars: ``n``,
        ``median``, ``p16`` and ``p84`` of the ratio.
    """
    out = {}
    for name in ("amplitude", "depth"):
        out[name] = {}
        for group, stars in (
            ("isolated", [s for s in score.targets if not s.crowded]),
            ("all", score.targets),
        ):
            values = _values(stars, lambda s, n=name: getattr(s, f"{n}_ratio"))
            out[name][group] = {
                "n": int(values.size),
                "median": _median(values),
                "p16": float(np.percentile(values, 16)) if values.size else math.nan,
                "p84": float(np.percentile(values, 84)) if values.size else math.nan,
            }
    return out


def targets_check(rows: Sequence[dict], signals: dict) -> list[dict]:
    """Issue 14's targets, each with the value measured and whether it is met.

    Returns
    -------
    list of dict
        ``what``, ``value`` (worst bin or median) and ``met`` (None without data).
    """
    checks = []
    for (lo, hi), limit in TARGETS:
        for kind in ("constant", "variable"):
            cells = [
                r["isolated"]
                for r in rows
                if r["kind"] == kind and lo <= r["tmag"][0] and r["tmag"][1] <= hi
            ]
            medians = [c["median"] for c in cells if math.isfinite(c["median"])]
            worst = max(medians) if medians else math.nan
            checks.append(
                {
                    "what": f"isolated {kind} Tmag {lo:g}-{hi:g}: median <= {limit:.2f} per bin",
                    "value": worst,
                    "met": (worst <= limit) if medians else None,
                }
            )
    p90 = [r[g]["p90"] for r in rows for g in ("isolated",) if math.isfinite(r[g]["p90"])]
    checks.append(
        {
            "what": f"isolated: 90th percentile <= {TARGET_P90} in every bin",
            "value": max(p90) if p90 else math.nan,
            "met": (max(p90) <= TARGET_P90) if p90 else None,
        }
    )
    for name in ("amplitude", "depth"):
        median = signals[name]["isolated"]["median"]
        checks.append(
            {
                "what": f"{name}s recovered: median within {TARGET_SIGNAL:.0%}",
                "value": median,
                "met": abs(median - 1) <= TARGET_SIGNAL if math.isfinite(median) else None,
            }
        )
    return checks


def sector_report(score: SectorScore, bins: Sequence[float] = TMAG_BINS) -> dict:
    """Everything of the report as plain values (for JSON; NaN where not measured).

    Returns
    -------
    dict
        ``bins`` (:func:`bin_table`), ``signals`` (:func:`signals_summary`), ``targets``
        (:func:`targets_check`), ``common_mode`` (:func:`common_mode`, its series as lists),
        ``counts`` (tasks, with light curves, statuses, good and finite cadences), ``stars``
        (every target's score).
    """
    rows = bin_table(score, bins)
    signals = signals_summary(score)
    mode = common_mode(score)
    mode["series"] = {k: v.tolist() for k, v in mode["series"].items()}
    scored = [s for s in score.targets if s.n_finite]
    statuses: dict[str, int] = {}
    for s in score.targets:
        statuses[s.status] = statuses.get(s.status, 0) + 1
    return {
        "bins": rows,
        "signals": signals,
        "targets": [*targets_check(rows, signals), small_aperture_check(score.targets)],
        "corrections": corrections_report(score),
        "common_mode": mode,
        "counts": {
            "tasks": len(score.targets),
            "scored": len(scored),
            "statuses": statuses,
            "good_cadences": max((s.n_good for s in score.targets), default=0),
            "median_finite_cadences": _median(_values(scored, lambda s: s.n_finite)),
            "variable": sum(s.variable for s in scored),
        },
        "stars": [
            asdict(s) | {"crowded": s.crowded, "ratio_hour": s.ratio_hour} for s in score.targets
        ],
    }


def _f(value: float, spec: str = ".2f") -> str:
    return format(value, spec) if isinstance(value, int | float) and math.isfinite(value) else "-"


def _bin_lines(rows: Sequence[dict]) -> list[str]:
    lines = [
        "| Tmag | kind | iso n | iso median | iso p90 | iso p90 nbrs | iso 30-min | iso plain "
        "| iso own | npix / optimal "
        "| small ap. | crowded n | crowded median | crowded p90 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        iso, crowd = r["isolated"], r["crowded"]
        lo, hi = r["tmag"]
        lines.append(
            f"| {lo:g}-{hi:g} | {r['kind']} | {iso['n']} | {_f(iso['median'])} "
            f"| {_f(iso['p90'])} | {_f(iso['p90_neighbours'])} | {_f(iso['median_30min'])} "
            f"| {_f(iso['plain_median'])} "
            f"| {_f(iso['own_median'])} "
            f"| {_f(iso['npix'], '.0f')} / {_f(iso['optimal_npix'], '.0f')} "
            f"| {_f(iso['small_fraction'], '.0%')} | {crowd['n']} | {_f(crowd['median'])} "
            f"| {_f(crowd['p90'])} |"
        )
    return lines


def _mode_lines(mode: dict) -> list[str]:
    lines = [
        f"Common mode of {mode['stars']} quiet isolated Tmag 11-14 stars (median per cadence of "
        "(flux - truth) / the star's 30-min noise; 'background' is the same for the flux error "
        "of the background estimate alone, -(FLUX_BKG - n_pix B_true)):",
        "",
        "| orbit | TJD | flux p05 / p95 (min / max) | flux rms | background p05 / p95 "
        "| background rms | flux - background rms | correlation | bkg error median "
        "(p05 / p95) [e-/s/px] | true sky [e-/s/px] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in mode["orbits"]:
        fl, bk, diff, err = (
            o["flux"],
            o["background"],
            o["flux_minus_background"],
            o["background_error"],
        )
        lines.append(
            f"| {o['orbit']} | {o['tmid'][0]:.1f}-{o['tmid'][1]:.1f} "
            f"| {_f(fl['p05'])} / {_f(fl['p95'])} ({_f(fl['min'])} / {_f(fl['max'])}) "
            f"| {_f(fl['rms'])} | {_f(bk['p05'])} / {_f(bk['p95'])} | {_f(bk['rms'])} "
            f"| {_f(diff['rms'])} | {_f(o['correlation'])} | {_f(err['median'], '.3f')} "
            f"({_f(err['p05'], '.3f')} / {_f(err['p95'], '.3f')}) "
            f"| {_f(o['background_true'], '.0f')} |"
        )
    slow = mode["slow_term"]
    lines += [
        "",
        "Quiet stars' median 1-hour rms in units of their 30-min noise (white noise "
        f"{slow['white']:.2f}): as is {_f(slow['as_is'])}, with their own background error "
        f"removed {_f(slow['own_background_removed'])}, with their true motion fitted out "
        f"{_f(slow['motion_removed'])}, both {_f(slow['background_and_motion_removed'])}, "
        f"with the common mode removed {_f(slow['common_mode_removed'])}.",
    ]
    return lines


def format_markdown(report: dict) -> str:
    """The report of :func:`sector_report` as Markdown.

    Parameters
    ----------
    report : dict
        From :func:`sector_report`.

    Returns
    -------
    str
    """
    counts = report["counts"]
    lines = [
        f"Tasks {counts['tasks']} ({', '.join(f'{k} {v}' for k, v in counts['statuses'].items())}"
        f"); scored {counts['scored']} ({counts['variable']} variable); good cadences "
        f"{counts['good_cadences']}, median finite per star "
        f"{_f(counts['median_finite_cadences'], '.0f')}.",
        "",
        "1-hour robust rms of (flux - true signal), every bin scaled to a full one, over the "
        "noise limit of the S/N-optimal aperture; the other stars' true variable light in an "
        "aperture is signal, not noise, and is taken out ('p90 nbrs': the 90th percentile "
        "with it left in; '30-min': the 30-min rms over its limit; "
        "'plain': the plain 1-hour rms, partly filled bins as they are, as the pipeline's "
        "rms_hour; 'own': plain, over the limit of the aperture used, today's yardstick; "
        "'small ap.': aperture under half the optimal size):",
        "",
        *_bin_lines(report["bins"]),
        "",
    ]
    for name, label in (("amplitude", "Sinusoid amplitudes"), ("depth", "Transit depths")):
        for group in ("isolated", "all"):
            s = report["signals"][name][group]
            lines.append(
                f"{label} recovered ({group}): median {_f(s['median'], '.3f')} "
                f"(16-84 %: {_f(s['p16'], '.3f')}-{_f(s['p84'], '.3f')}, {s['n']} stars)"
            )
    lines += ["", *_mode_lines(report["common_mode"]), "", "Targets of issue 14:"]
    for check in report["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[check["met"]]
        value = _f(check["value"], check.get("format", ".3f"))
        lines.append(f"- {check['what']}: {value} {verdict}")
    if report.get("corrections"):
        lines += ["", *format_corrections(report["corrections"])]
    return "\n".join(lines)
