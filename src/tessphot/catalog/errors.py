"""The error raised by the catalog stage."""

from __future__ import annotations

from tessphot.io.errors import TessphotError


class CatalogError(TessphotError):
    """A catalog cannot be built or read; the message names the input and the problem.

    Raised for an unknown sector, a missing or malformed catalog file, an unreachable
    database or wrong credentials, a failed MAST query, and the like. When it is raised while
    a catalog file is being written, no partial file is left behind.
    """
