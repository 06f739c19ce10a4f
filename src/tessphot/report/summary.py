"""The numbers of the precision report, per group of tasks (sector, camera, CCD, cadence)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from tessphot.config.photometry import DEFAULT_PRF_CHI2_MAX
from tessphot.lightcurve.diagnostics import PPM
from tessphot.report.data import RunTable
from tessphot.report.validation import VALIDATED_STATUSES, DataVal, approved
from tessphot.tasks import FALLBACK_TEXT, STATUS

#: Width of the magnitude bins of the noise table [mag].
TMAG_BIN = 1.0
#: Method of a task whose method is automatic (``todolist.method`` NULL).
DEFAULT_METHOD = "aperture"
#: Longest error text kept in the counts [characters].
MAX_REASON_LENGTH = 160
#: The star's name in a message, left out so that the same reason of many stars counts once.
STAR_NAME = re.compile(r"TIC \d+: ")


def group_keys(run: RunTable) -> list[tuple[int, int, int, int]]:
    """The distinct ``(sector, camera, ccd, cadence)`` of a run, sorted."""
    keys = {
        tuple(int(v) for v in row)
        for row in zip(run["sector"], run["camera"], run["ccd"], run["cadence"], strict=True)
    }
    return sorted(keys)


def group_name(key: tuple[int, int, int, int]) -> str:
    """A file-name-safe name of a group: ``s001_c1_ccd4_1800s``."""
    sector, camera, ccd, cadence = key
    return f"s{sector:03d}_c{camera}_ccd{ccd}_{cadence}s"


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _median(values: np.ndarray) -> float | None:
    values = _finite(values)
    return float(np.median(values)) if values.size else None


def _status_counts(run: RunTable) -> dict[str, int]:
    names = [STATUS(int(s)).name if np.isfinite(s) else "NOT_RUN" for s in run["status"]]
    return dict(sorted(Counter(names).items()))


def _first_error(text: str | None) -> str | None:
    if not text:
        return None
    lines = text.splitlines()
    line = next((line for line in lines if line.startswith(("ERROR", "ABORT"))), lines[0])
    return STAR_NAME.sub("", line)[:MAX_REASON_LENGTH]


def _methods(run: RunTable) -> dict[str, Any]:
    """Methods used, switches ``asked -> used`` and the reasons given for them.

    The automatic choice's fall back from a PRF fit to aperture photometry counts as a switch
    of its own, its reason without the star's numbers.
    """
    used = Counter(m for m in run["method_used"] if m is not None)
    switches: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for asked, got, errors in zip(run["method"], run["method_used"], run["errors"], strict=True):
        lines = (errors or "").splitlines()
        fallback = next((line for line in lines if FALLBACK_TEXT in line), None)
        if got is not None and fallback is not None:
            switches[f"{asked or DEFAULT_METHOD} -> PRF fit -> {got} (fell back)"] += 1
            reason = fallback.split(" (reduced chi-square", 1)[0]
            reasons[STAR_NAME.sub("", reason)[:MAX_REASON_LENGTH]] += 1
            continue
        if got is None or (asked or DEFAULT_METHOD) == got:
            continue
        switches[f"{asked or DEFAULT_METHOD} -> {got}"] += 1
        reason = next((line for line in lines if "switch" in line.lower()), "no reason given")
        reasons[STAR_NAME.sub("", reason)[:MAX_REASON_LENGTH]] += 1
    return {
        "used": dict(used),
        "switches": dict(switches),
        "switch_reasons": dict(reasons),
        "prf_fits": _prf_fits(run),
    }


def _prf_fits(run: RunTable) -> dict[str, Any]:
    """The PRF fits' reduced chi-square (``PRFCHI2``): how many, median, 90th percentile."""
    chi2 = _finite(run["prf_chi2"])
    if not chi2.size:
        return {"light curves with a PRF fit": 0}
    return {
        "light curves with a PRF fit": int(chi2.size),
        "median PRFCHI2": float(np.median(chi2)),
        "90th percentile of PRFCHI2": float(np.percentile(chi2, 90)),
        f"PRFCHI2 above {DEFAULT_PRF_CHI2_MAX:g} (the default prf_chi2_max)": int(
            (chi2 > DEFAULT_PRF_CHI2_MAX).sum()
        ),
    }


def _noise_bins(run: RunTable, rms_ratio: np.ndarray, ptp_ratio: np.ndarray) -> list[dict]:
    """Median noise and noise over the model per magnitude bin (stars with a light curve)."""
    tmag = np.where(np.isin(run["status"], VALIDATED_STATUSES), run["tmag"], np.nan)
    if not np.isfinite(tmag).any():
        return []
    first = np.floor(np.nanmin(tmag) / TMAG_BIN) * TMAG_BIN
    last = np.floor(np.nanmax(tmag) / TMAG_BIN) * TMAG_BIN
    bins = []
    for low in np.arange(first, last + TMAG_BIN / 2, TMAG_BIN):
        rows = (tmag >= low) & (tmag < low + TMAG_BIN) & np.isfinite(run["rms_hour"])
        if not rows.any():
            continue
        bins.append(
            {
                "tmag_min": float(low),
                "tmag_max": float(low + TMAG_BIN),
                "stars": int(rows.sum()),
                "median_rms_hour_ppm": _median(run["rms_hour"][rows] * PPM),
                "median_ptp_ppm": _median(run["ptp"][rows] * PPM),
                "median_rms_over_model": _median(rms_ratio[rows]),
                "median_ptp_over_model": _median(ptp_ratio[rows]),
                "corrected": int(np.isfinite(run["rms_hour_corr"][rows]).sum()),
                "median_rms_hour_corr_ppm": _median(run["rms_hour_corr"][rows] * PPM),
                "median_ptp_corr_ppm": _median(run["ptp_corr"][rows] * PPM),
            }
        )
    return bins


def _correction_counts(run: RunTable) -> dict[str, int]:
    """Light curves per correction status (``TODO``: not corrected) and per corrector."""
    validated = np.isin(run["status"], VALIDATED_STATUSES)
    statuses = Counter(
        "TODO" if not np.isfinite(s) else STATUS(int(s)).name for s in run["corr_status"][validated]
    )
    methods = Counter(m for m in run["corr_method"][validated] if m)
    return {**dict(statuses), **{f"method {m}": n for m, n in methods.items()}}


def _flag_counts(flags: np.ndarray, validated: np.ndarray) -> dict[str, Any]:
    counts = {flag.name: int(((flags & int(flag)) != 0).sum()) for flag in DataVal}
    return {
        "validated": int(validated.sum()),
        "approved": int(approved(flags[validated]).sum()),
        "flags": counts,
    }


def group_summary(
    run: RunTable, rms_ratio: np.ndarray, ptp_ratio: np.ndarray, flags: np.ndarray
) -> dict[str, Any]:
    """The numbers of one group of tasks (all arrays are the group's rows)."""
    time = _finite(run["elaptime"])
    validated = np.isin(run["status"], VALIDATED_STATUSES)
    errors = Counter(
        reason
        for reason, status in zip(map(_first_error, run["errors"]), run["status"], strict=True)
        if reason and status in (int(STATUS.ERROR), int(STATUS.ABORT))
    )
    return {
        "tasks": len(run),
        "statuses": _status_counts(run),
        "methods": _methods(run),
        "errors": dict(errors.most_common()),
        "validation": _flag_counts(flags, validated),
        "noise": _noise_bins(run, rms_ratio, ptp_ratio),
        "median_rms_over_model": _median(rms_ratio[validated]),
        "median_ptp_over_model": _median(ptp_ratio[validated]),
        "corrections": _correction_counts(run),
        "time": {
            "total_s": float(time.sum()),
            "median_per_star_s": _median(time),
            "max_per_star_s": float(time.max()) if time.size else None,
        },
    }
