"""Exceptions raised by tessphot's readers."""

from __future__ import annotations

import os


class TessphotError(Exception):
    """Base class of all errors raised deliberately by tessphot."""


class FileProblem(TessphotError):
    """A file that cannot be used.

    The message always names the file and the problem: ``"{path}: {problem}"``.

    Parameters
    ----------
    path : str or os.PathLike
        The offending file.
    problem : str
        What is wrong with it.

    Attributes
    ----------
    path : str
        The offending file, as given.
    problem : str
        What is wrong with it.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        # Exceptions are pickled as ``cls(*self.args)``; our args is the formatted message, so
        # rebuild from (path, problem) instead, otherwise the error cannot cross process
        # boundaries (multiprocessing, MPI).
        return (type(self), (self.path, self.problem))


class FFIError(FileProblem):
    """A file cannot be read as a TESS full-frame image."""
