"""The corrected light curves of a scored sector against issue 15's targets.

Per Tmag bin: the isolated constant stars' median 1-hour rms of ``FLUX_CORR`` minus the
truth over the noise limit of the aperture used, with the raw flux's beside it, and the
change of the per-cadence noise; the variable stars' signal kept (sinusoid amplitudes,
transit depths) and the share distorted by more than 10 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tessphot.evaluation.scoring.sector import SectorScore, TargetScore, is_quiet

#: Issue 15's targets: Tmag range of the constant stars and their largest median ratio.
TARGET_TMAG = (8.0, 14.0)
TARGET_RATIO = 1.05
#: Signals kept: median within this of 1 (periods over LONG_PERIOD within TARGET_LONG).
TARGET_SIGNAL = 0.02
LONG_PERIOD = 3.0
TARGET_LONG = 0.05
#: A variable star is distorted when its signal kept is off by more than this ...
DISTORTED = 0.10
#: ... and at most this share of the variable stars may be.
TARGET_DISTORTED = 0.05
#: Signals kept are counted where they are measured to this (relative uncertainty), so
#: that a 10 % distortion stands out of the noise.
SIGNAL_PRECISION = 0.02
#: Largest increase of the quiet stars' per-cadence noise.
TARGET_PTP = 0.01
#: Default Tmag bins.
TMAG_BINS = (6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0)


def _median(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else math.nan


def corrected_ratio(star: TargetScore) -> float:
    """Corrected 1-hour noise over the limit of the aperture used (issue 15's yardstick)."""
    return star.corr_rms_hour / star.own_limit_hour


def raw_ratio(star: TargetScore) -> float:
    """Raw 1-hour noise (full bins) over the limit of the aperture used."""
    return star.rms_hour / star.own_limit_hour


def ptp_change(star: TargetScore) -> float:
    """Corrected per-cadence noise over the raw one (1: no noise added)."""
    return star.corr_rms_cadence / star.rms_30min


def _corrected(stars: Sequence[TargetScore]) -> list[TargetScore]:
    return [s for s in stars if math.isfinite(s.corr_rms_hour)]


def corrections_table(score: SectorScore, bins: Sequence[float] = TMAG_BINS) -> list[dict]:
    """One row per Tmag bin: the isolated stars' corrected and raw noise, signals kept."""
    rows = []
    for lo, hi in zip(bins[:-1], bins[1:], strict=True):
        stars = _corrected([s for s in score.targets if lo <= s.tmag < hi and not s.crowded])
        if not stars:
            continue
        constant = [s for s in stars if not s.variable]
        variable = [s for s in stars if s.variable]
        rows.append(
            {
                "tmag": (lo, hi),
                "constant": len(constant),
                "corrected": _median([corrected_ratio(s) for s in constant]),
                "raw": _median([raw_ratio(s) for s in constant]),
                "ptp_change": _median([ptp_change(s) for s in constant]),
                "systematics_left": _median([s.corr_systematics_left for s in constant]),
                "variable": len(variable),
                "signal_kept": _median([s.corr_signal_kept for s in variable]),
            }
        )
    return rows


def signals_kept(score: SectorScore) -> dict:
    """Signals kept by the corrections: sinusoids (short and long periods) and transits.

    Only the stars whose signal kept is measured to :data:`SIGNAL_PRECISION` count.
    """
    stars = [
        s
        for s in _corrected(score.targets)
        if s.variable and not s.crowded and s.corr_signal_error <= SIGNAL_PRECISION
    ]
    groups = {
        "sinusoid": [s for s in stars if s.kind == "sinusoid"],
        f"sinusoid period > {LONG_PERIOD:g} d": [
            s for s in stars if s.kind == "sinusoid" and s.period > LONG_PERIOD
        ],
        "transit": [s for s in stars if s.kind == "transit"],
        "all variable": stars,
    }
    out = {}
    for name, group in groups.items():
        kept = np.array([s.corr_signal_kept for s in group], dtype=float)
        kept = kept[np.isfinite(kept)]
        out[name] = {
            "n": int(kept.size),
            "median": float(np.median(kept)) if kept.size else math.nan,
            "distorted": float(np.mean(np.abs(kept - 1) > DISTORTED)) if kept.size else math.nan,
        }
    return out


def corrections_check(rows: Sequence[dict], signals: dict, score: SectorScore) -> list[dict]:
    """Issue 15's targets, each with its value and whether it is met (None: no data)."""
    lo, hi = TARGET_TMAG
    medians = [
        r["corrected"]
        for r in rows
        if lo <= r["tmag"][0] and r["tmag"][1] <= hi and math.isfinite(r["corrected"])
    ]
    worst = max(medians) if medians else math.nan
    quiet = _median([ptp_change(s) for s in _corrected(score.targets) if is_quiet(s)])
    checks = [
        {
            "what": f"isolated constant Tmag {lo:g}-{hi:g}: corrected median <= {TARGET_RATIO} "
            "per bin",
            "value": worst,
            "met": worst <= TARGET_RATIO if medians else None,
        },
        {
            "what": f"quiet stars: per-cadence noise increased by <= {TARGET_PTP:.0%}",
            "value": quiet,
            "met": quiet <= 1 + TARGET_PTP if math.isfinite(quiet) else None,
        },
    ]
    for name, limit in (
        ("sinusoid", TARGET_SIGNAL),
        (f"sinusoid period > {LONG_PERIOD:g} d", TARGET_LONG),
        ("transit", TARGET_SIGNAL),
    ):
        median = signals[name]["median"]
        checks.append(
            {
                "what": f"{name}: median signal kept within {limit:.0%}",
                "value": median,
                "met": abs(median - 1) <= limit if math.isfinite(median) else None,
            }
        )
    share = signals["all variable"]["distorted"]
    checks.append(
        {
            "what": f"variable stars distorted by > {DISTORTED:.0%}: under {TARGET_DISTORTED:.0%}",
            "value": share,
            "met": share < TARGET_DISTORTED if math.isfinite(share) else None,
        }
    )
    return checks


def corrections_report(score: SectorScore) -> dict | None:
    """The corrections' part of the sector report (None when nothing was corrected)."""
    if not _corrected(score.targets):
        return None
    rows = corrections_table(score)
    signals = signals_kept(score)
    return {"bins": rows, "signals": signals, "targets": corrections_check(rows, signals, score)}


def _f(value: float, spec: str = ".2f") -> str:
    return format(value, spec) if isinstance(value, int | float) and math.isfinite(value) else "-"


def format_corrections(report: dict) -> list[str]:
    """The corrections' part of the report as Markdown lines."""
    lines = [
        "Corrected flux (FLUX_CORR) of isolated stars: 1-hour rms of (corrected - intrinsic "
        "signal) over the noise limit of the aperture used, the raw flux's beside it; "
        "per-cadence noise corrected over raw; fraction of the multiplicative systematics "
        "left; signal kept by the variable stars:",
        "",
        "| Tmag | constant n | corrected | raw | per-cadence change | systematics left "
        "| variable n | signal kept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["bins"]:
        lo, hi = r["tmag"]
        lines.append(
            f"| {lo:g}-{hi:g} | {r['constant']} | {_f(r['corrected'])} | {_f(r['raw'])} "
            f"| {_f(r['ptp_change'], '.3f')} | {_f(r['systematics_left'], '.3f')} "
            f"| {r['variable']} | {_f(r['signal_kept'], '.3f')} |"
        )
    lines.append("")
    for name, s in report["signals"].items():
        lines.append(
            f"Signal kept, {name}: median {_f(s['median'], '.3f')}, distorted by > "
            f"{DISTORTED:.0%}: {_f(s['distorted'], '.1%')} ({s['n']} stars measured to "
            f"{SIGNAL_PRECISION:.0%})"
        )
    lines += ["", "Targets of issue 15:"]
    for check in report["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[check["met"]]
        lines.append(f"- {check['what']}: {_f(check['value'], '.3f')} {verdict}")
    return lines
