"""The errors of the photometry: a target that cannot be processed, K2P2's errors."""

from __future__ import annotations

from tessphot.io.errors import TessphotError


class PhotometryError(TessphotError):
    """A target that cannot be processed (the message says which and why)."""


class K2P2Error(TessphotError):
    """Base class of the K2P2 errors."""


class K2P2NoFlux(K2P2Error):
    """The sum image has no positive finite pixel."""


class K2P2NoStars(K2P2Error):
    """No star stands out of the sum image."""
