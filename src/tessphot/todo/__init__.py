"""The todo stage: building ``todo.sqlite`` from the prepared data and the catalogs."""

from tessphot.todo.make import TodoError, ffi_targets, find_prepared, make_todo
from tessphot.todo.overrides import OverrideFileError, read_exclusions, read_methods

__all__ = [
    "OverrideFileError",
    "TodoError",
    "ffi_targets",
    "find_prepared",
    "make_todo",
    "read_exclusions",
    "read_methods",
]
