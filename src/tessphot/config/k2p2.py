"""Settings of the K2P2 mask finder of aperture photometry (table ``[photometry.k2p2]``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tessphot.config.fields import Table, setting


@dataclass(frozen=True)
class K2P2Settings(Table):
    """Settings of the K2P2 mask finder (the original's defaults).

    Attributes
    ----------
    thresh : float
        Significance cut above the sky mode, in robust standard deviations (>= 0).
    min_no_pixels_in_mask : int
        Smallest mask kept [pixels] (>= 1).
    min_for_cluster : int
        DBSCAN ``min_samples``: pixels (itself included) within ``cluster_radius`` that make
        a pixel a core pixel of a cluster (>= 1).
    cluster_radius : float
        DBSCAN ``eps`` [pixels] (> 0).
    segmentation : bool
        Split clusters with a watershed.
    ws_blur : float
        Width of the Gaussian blur before finding local maxima [pixels] (>= 0).
    ws_thres : float
        ``threshold_rel`` of the local maxima (0-1).
    ws_footprint : int
        Size of the square footprint of the local maxima [pixels] (>= 1).
    extend_overflow : bool
        Extend masks of saturated stars along their bleed columns.
    saturation_limit : float
        With a catalog, only masks whose catalog stars combine to this magnitude or brighter
        are extended [Tmag].
    sample_trim : float
        Fraction of the brightest pixels left out of the sky distribution (0 <= x < 1).
    flux_cap : float
        Pixels this bright or brighter are left out of the sky distribution [e-/s] (> 0).
    marker_distance : float
        Largest distance from a catalog star to its watershed marker [pixels] (>= 0) ...
    marker_distance_bright : float
        ... and for stars brighter than ``saturation_limit`` (>= 0).
    overflow_flatness : float
        A column is saturated if ``|median(diff(p))| / max(p)`` of its mask pixels ``p`` is
        below this (>= 0) ...
    overflow_level : float
        ... and ``median(p)`` is at least this fraction of the mask's maximum (0-1).
    sky_positive_only : bool
        Estimate the sky from the positive pixels only, as the original (tessphot's default is
        all finite pixels, see :mod:`tessphot.photometry.k2p2`).
    min_peak_significance : float
        A mask must contain a pixel this many noise standard deviations above the sky mode
        (tessphot's addition; 0 disables it; >= 0).
    """

    TABLE = "photometry.k2p2"
    LABEL = "K2P2"

    thresh: float = setting(0.8, unit="sigma", ge=0)
    min_no_pixels_in_mask: int = setting(4, unit="px", ge=1)
    min_for_cluster: int = setting(4, unit="px", ge=1)
    cluster_radius: float = setting(math.sqrt(2), unit="px", gt=0)
    segmentation: bool = setting(True)
    ws_blur: float = setting(0.5, unit="px", ge=0)
    ws_thres: float = setting(0, ge=0, le=1)
    ws_footprint: int = setting(3, unit="px", ge=1)
    extend_overflow: bool = setting(True)
    saturation_limit: float = setting(7.0, unit="Tmag")
    sample_trim: float = setting(0.15, ge=0, lt=1)
    flux_cap: float = setting(7e4, unit="e-/s", gt=0)
    marker_distance: float = setting(2 * math.sqrt(2), unit="px", ge=0)
    marker_distance_bright: float = setting(5 * math.sqrt(2), unit="px", ge=0)
    overflow_flatness: float = setting(0.01, ge=0)
    overflow_level: float = setting(0.5, ge=0, le=1)
    sky_positive_only: bool = setting(False)
    min_peak_significance: float = setting(5.0, unit="sigma", ge=0)

    def header_keywords(self) -> dict[str, tuple[Any, str]]:
        """The settings as light-curve header keywords (the original's ``KP_*`` and ours)."""
        return {
            "KP_THRES": (self.thresh, "K2P2 sum-image threshold"),
            "KP_MIPIX": (self.min_no_pixels_in_mask, "K2P2 min pixels in mask"),
            "KP_MICLS": (self.min_for_cluster, "K2P2 min pix. for cluster"),
            "KP_CLSRA": (self.cluster_radius, "K2P2 cluster radius"),
            "KP_WS": (self.segmentation, "K2P2 watershed segmentation"),
            "KP_WSBLR": (self.ws_blur, "K2P2 watershed blur"),
            "KP_WSTHR": (self.ws_thres, "K2P2 watershed threshold"),
            "KP_WSFOT": (self.ws_footprint, "K2P2 watershed footprint"),
            "KP_EX": (self.extend_overflow, "K2P2 extend overflow"),
            "KP_SATLM": (self.saturation_limit, "[mag] K2P2 saturation limit"),
            "KP_SKYPO": (self.sky_positive_only, "K2P2 sky from positive pixels only"),
            "KP_PKSIG": (self.min_peak_significance, "K2P2 min. peak significance"),
        }
