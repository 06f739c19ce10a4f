"""The error of a pixel source that cannot be used."""

from __future__ import annotations

from tessphot.io.errors import TessphotError


class SourceError(TessphotError):
    """Pixels that cannot be read for a target (the message says which and why)."""
