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
    conditions: list[tuple[str, list[Any]]] = [
        _in_condition(table, key, constraints[key])
        for key in ("priority", "starid", "sector", "camera", "ccd", "cbv_area")
        if constraints.get(key) is not None
    ]
    cadence = constraints.get("cadence")
    if cadence is not None:
        conditions.append(_cadence_condition(table, cadence))
    datasource = constraints.get("datasource")
    if datasource is not None:
        conditions.append((f"{table}.datasource {'=' if datasource == 'ffi' else '!='} 'ffi'", []))
    tmag_min, tmag_max = constraints.get("tmag_min"), constraints.get("tmag_max")
    if tmag_min is not None or tmag_max is not None:
        conditions.append(_tmag_condition(table, tmag_min, tmag_max))
    parts = [condition for condition, _ in conditions]
    params = [param for _, values in conditions for param in values]
    return (" AND ".join(parts) if parts else "1"), params


def _in_condition(table: str, column: str, value: Any) -> tuple[str, list[Any]]:
    """``column IN (...)`` for a value or a list of values (an empty list selects nothing)."""
    values = _as_list(value)
    if not values:
        return "0", []
    return f"{table}.{column} IN ({','.join('?' * len(values))})", [int(v) for v in values]


def _cadence_condition(table: str, cadence: Any) -> tuple[str, list[Any]]:
    """The cadence in seconds (value or list), or ``'ffi'`` for all FFI tasks."""
    if isinstance(cadence, str):
        if cadence != "ffi":
            raise ValueError(f"invalid cadence constraint {cadence!r}: seconds or 'ffi'")
        return f"{table}.datasource = 'ffi'", []
    return _in_condition(table, "cadence", cadence)


def _tmag_condition(
    table: str, tmag_min: float | None, tmag_max: float | None
) -> tuple[str, list[Any]]:
    """The magnitude window; a secondary target is selected by its primary's magnitude."""
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
    condition = (
        f"(({table}.datasource NOT LIKE 'tpf:%' AND {own}) OR "
        f"({table}.datasource LIKE 'tpf:%' AND CAST(SUBSTR({table}.datasource, 5) AS INTEGER)"
        f" IN (SELECT primary_target.starid FROM todolist AS primary_target"
        f" WHERE primary_target.datasource = 'tpf' AND {primary})))"
    )
    return condition, window_params * 2


def _as_list(value: Any) -> list[Any]:
    """A scalar (or string) as a one-element list, any other iterable as a list."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return [value]
    return list(value)
