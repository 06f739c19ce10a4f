"""The error of a target that cannot be processed."""

from __future__ import annotations

from tessphot.io.errors import TessphotError


class PhotometryError(TessphotError):
    """A target that cannot be processed (the message says which and why)."""
