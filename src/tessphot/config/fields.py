"""The shared machinery of the settings tables: declared fields, checked values.

Every table is a dataclass whose fields are made with :func:`setting` (type from the
annotation; unit, range and choices in the field's metadata). :class:`Table` checks every
value when the table is made (:meth:`Table.__post_init__`) and builds a table from a
mapping (:meth:`Table.from_mapping`: unknown keys are errors; nested tables for fields whose
type is itself a table). An invalid value gives one :class:`SettingsError` naming the table
and the key, e.g. ``invalid setting [photometry.linpsf] fit_radius = -1: must be > 0``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np


class SettingsError(ValueError):
    """A setting that cannot be used (the message names the table, the key and why).

    Parameters
    ----------
    message : str
        The message.
    table, key : str, optional
        The table and key of an invalid value ...
    value : optional
        ... the value ...
    problem : str, optional
        ... and what is wrong with it.
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        key: str | None = None,
        value: Any = None,
        problem: str | None = None,
    ) -> None:
        super().__init__(message)
        self.table, self.key, self.value, self.problem = table, key, value, problem


def setting(
    default: Any,
    *,
    unit: str = "",
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple | None = None,
    path: bool = False,
) -> Any:
    """A field of a settings table.

    Parameters
    ----------
    default
        The default value (a list is stored as a tuple).
    unit : str
        Unit of the value, e.g. ``"px"`` (for the documentation).
    ge, gt, le, lt : float, optional
        Bounds of a number: ``>=``, ``>``, ``<=``, ``<``.
    choices : tuple, optional
        The allowed values.
    path : bool
        A file or folder: a path object is accepted (stored as a string).
    """
    metadata = {"unit": unit, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices}
    metadata["path"] = path
    if isinstance(default, list):
        default = tuple(default)
    return dataclasses.field(default=default, metadata={"setting": metadata})


def _allowed_types(hint: Any) -> tuple[tuple[type, ...], bool]:
    """The types an annotation allows, and whether it allows None."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    allowed = tuple(typing.get_origin(t) or t for t in options if t is not type(None))
    return allowed, type(None) in options


def _type_name(types_: tuple[type, ...], optional: bool) -> str:
    names = [{tuple: "list"}.get(t, t.__name__) for t in types_]
    return " or ".join(names + (["None"] if optional else []))


def _converted(value: Any, allowed: tuple[type, ...]) -> Any:
    """``value`` as one of the ``allowed`` types (numbers as given), or raises TypeError."""
    for kind in allowed:
        if kind is bool and isinstance(value, bool | np.bool_):
            return bool(value)
        if kind in (int, float) and isinstance(value, bool | np.bool_):
            continue
        if kind is int and isinstance(value, numbers.Integral):
            return value
        if kind is float and isinstance(value, numbers.Real):
            return value
        if kind is tuple and isinstance(value, list | tuple):
            if all(isinstance(v, str) for v in value):
                return tuple(value)
        elif kind not in (bool, int, float) and isinstance(value, kind):
            return value
    raise TypeError


def _range_problem(value: float, meta: Mapping[str, Any]) -> str | None:
    """What is wrong with a number's range, if anything."""
    if isinstance(value, float) and math.isnan(value):
        return "must be a number, not NaN"
    checks = (
        ("ge", ">=", lambda v, b: v >= b),
        ("gt", ">", lambda v, b: v > b),
        ("le", "<=", lambda v, b: v <= b),
        ("lt", "<", lambda v, b: v < b),
    )
    for key, sign, ok in checks:
        bound = meta.get(key)
        if bound is not None and not ok(value, bound):
            return f"must be {sign} {bound:g}"
    return None


def check_value(value: Any, hint: Any, meta: Mapping[str, Any]) -> tuple[Any, str | None]:
    """A value converted to its field's type, and what is wrong with it (None: nothing).

    Parameters
    ----------
    value
        The value given.
    hint
        The field's type annotation (resolved).
    meta : mapping
        The field's :func:`setting` metadata.
    """
    allowed, optional = _allowed_types(hint)
    if meta.get("path") and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if value is None:
        return value, None if optional else f"must be {_type_name(allowed, False)}, not None"
    try:
        value = _converted(value, allowed)
    except TypeError:
        return value, f"must be {_type_name(allowed, optional)}, not {type(value).__name__}"
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        return value, f"must be one of {', '.join(repr(c) for c in choices)}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value, _range_problem(value, meta)
    return value, None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_table(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Table)


class Table:
    """Base of the settings tables (dataclasses): checked values, mappings in and out.

    Subclasses set :attr:`TABLE`, their name in a settings file (e.g. ``photometry.linpsf``).
    """

    #: The table's name in a settings file.
    TABLE: ClassVar[str] = ""
    #: What the settings are of, in the message about an unknown key (e.g. ``"K2P2"``).
    LABEL: ClassVar[str] = ""

    def __post_init__(self) -> None:
        """Check and convert every field declared with :func:`setting`.

        Raises
        ------
        SettingsError
            For the first invalid value (naming the table and the key).
        """
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            given = getattr(self, f.name)
            meta = f.metadata.get("setting")
            if meta is None:
                self._nested(f.name, hints[f.name], given)
                continue
            value, problem = check_value(given, hints[f.name], meta)
            if problem:
                raise self.error(f.name, given, problem)
            if value is not given:
                object.__setattr__(self, f.name, value)

    def _nested(self, name: str, hint: Any, value: Any) -> None:
        """A nested table given as a mapping, made into its table."""
        if _is_table(hint) and isinstance(value, Mapping):
            object.__setattr__(self, name, hint.from_mapping(value))

    @classmethod
    def error(cls, key: str, value: Any, problem: str) -> SettingsError:
        """The error of an invalid value of ``key`` (``problem``: what is wrong)."""
        return SettingsError(
            f"invalid setting [{cls.TABLE}] {key} = {value!r}: {problem}",
            table=cls.TABLE,
            key=key,
            value=value,
            problem=problem,
        )

    @classmethod
    def keys(cls) -> list[str]:
        """The keys of the table (nested tables' keys as ``table.key``)."""
        names = []
        for f in dataclasses.fields(cls):
            hint = _hints(cls)[f.name]
            names += [f"{f.name}.{k}" for k in hint.keys()] if _is_table(hint) else [f.name]
        return names

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None) -> typing.Self:
        """The table with the given values (the others at their defaults).

        Raises
        ------
        SettingsError
            For an unknown key, a nested table that is not a mapping, or an invalid value.
        """
        values = dict(values or {})
        hints = _hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            label = f"{cls.LABEL} " if cls.LABEL else ""
            raise SettingsError(f"unknown {label}setting {unknown[0]!r} in [{cls.TABLE}]")
        for key, value in values.items():
            hint = hints[key]
            if _is_table(hint) and not isinstance(value, hint):
                if not isinstance(value, Mapping):
                    raise SettingsError(f"[{hint.TABLE}] must be a table, not {value!r}")
                values[key] = hint.from_mapping(value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain values (nested tables as dicts, lists for tuples)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Table):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out
