"""Task constraints (star, sector, camera, CCD, cadence, magnitudes, ...) as SQL conditions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Constraints understood by the task queries; values may be scalars or lists.
CONSTRAINT_KEYS = (
    "priority",
    "starid",
    "sector",
    "camera",
    "ccd",
    "cadence",
    "cbv_area",
    "datasource",
    "tmag_min",
    "tmag_max",
)


def build_constraints(table: str = "todolist", **constraints: Any) -> tuple[str, list[Any]]:
    """SQL condition (with ``?`` parameters) selecting tasks, as the original's.

    Parameters
    ----------
    table : str
        Name or alias of the ``todolist`` table in the query.
    **constraints
        ``priority``, ``starid``, ``sector``, ``camera``, ``ccd``, ``cbv_area``: a value or a
        list of values. ``cadence``: seconds (value or list), or ``'ffi'`` for all FFI tasks.
        ``datasource``: ``'ffi'`` selects FFI tasks, anything else all non-FFI tasks (TPF
        primary and secondary targets). ``tmag_min``, ``tmag_max``: inclusive magnitude
        window; for a secondary target (``tpf:<TIC>``) it applies to the magnitude of its
        primary TPF target, so that faint secondaries are scheduled with their bright
        primary. None values are ignored.

    Returns
    -------
    condition : str
        ``"1"`` when there are no constraints.
    parameters : list

    Raises
    ------
    TypeError
        For an unknown constraint.
    """
    unknown = set(constraints) - set(CONSTRAINT_KEYS)
    if unknown:
        raise TypeError(
            f"unknown task constraint(s) {sorted(unknown)}; valid: {', '.join(CONSTRAINT_KEYS)}"
        )
    parts: list[str] = []
    params: list[Any] = []

    def add_in(column: str, value: Any) -> None:
        values = _as_list(value)
        if not values:
            parts.append("0")
            return
        parts.append(f"{table}.{column} IN ({','.join('?' * len(values))})")
        params.extend(int(v) for v in values)

    for key in ("priority", "starid", "sector", "camera", "ccd", "cbv_area"):
        if constraints.get(key) is not None:
            add_in(key, constraints[key])
    cadence = constraints.get("cadence")
    if isinstance(cadence, str):
        if cadence != "ffi":
            raise ValueError(f"invalid cadence constraint {cadence!r}: seconds or 'ffi'")
        parts.append(f"{table}.datasource = 'ffi'")
    elif cadence is not None:
        add_in("cadence", cadence)
    datasource = constraints.get("datasource")
    if datasource is not None:
        parts.append(f"{table}.datasource {'=' if datasource == 'ffi' else '!='} 'ffi'")
    tmag_min, tmag_max = constraints.get("tmag_min"), constraints.get("tmag_max")
    if tmag_min is not None or tmag_max is not None:
        window: list[str] = []
        window_params: list[float] = []
        if tmag_min is not None:
            window.append("{t}.tmag >= ?")
            window_params.append(float(tmag_min))
        if tmag_max is not None:
            window.append("{t}.tmag <= ?")
            window_params.append(float(tmag_max))
        own = " AND ".join(window).format(t=table)
        primary = " AND ".join(window).format(t="primary_target")
        parts.append(
            f"(({table}.datasource NOT LIKE 'tpf:%' AND {own}) OR "
            f"({table}.datasource LIKE 'tpf:%' AND CAST(SUBSTR({table}.datasource, 5) AS INTEGER)"
            f" IN (SELECT primary_target.starid FROM todolist AS primary_target"
            f" WHERE primary_target.datasource = 'tpf' AND {primary})))"
        )
        params.extend(window_params * 2)
    return (" AND ".join(parts) if parts else "1"), params


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return [value]
    return list(value)
