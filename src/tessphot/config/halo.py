"""Settings of halo photometry (table ``[photometry.halo]``)."""

from __future__ import annotations

from dataclasses import dataclass

from tessphot.config.fields import Table, setting


@dataclass(frozen=True)
class HaloSettings(Table):
    """Settings of halo photometry (method ``halo``).

    Attributes
    ----------
    radius : float
        The pixels within this distance of the target are used (its stamp is the square
        around them) [px] (> 0).
    saturation_fraction : float
        A pixel whose brightest good cadence reaches this fraction of the brightest pixel
        near the target counts as saturated (left out of the halo) (0 < x <= 1).
    bleed_margin : int
        Saturated pixels are widened by this many pixels along their column (the partly
        filled tips of the bleed columns), and by one across [px] (>= 0).
    min_snr : float
        Pixels whose mean is below this many times their typical per-cadence uncertainty
        are left out of the halo (>= 0).
    max_neighbour_light : float
        Pixels where the catalogued neighbours put more than this fraction of the pixel's
        mean are left out of the halo (>= 0).
    split_gap : float
        The light curve is split at gaps longer than this; each part gets its own weights
        [d] (> 0).
    tv_epsilon : float
        Smoothing of the total variation, ``|x| -> sqrt(x^2 + eps^2)`` [relative flux]
        (> 0).
    max_iterations : int
        Most iterations of the weights' optimiser (L-BFGS-B) per part (>= 1).
    """

    TABLE = "photometry.halo"

    radius: float = setting(20.0, unit="px", gt=0)
    saturation_fraction: float = setting(0.5, gt=0, le=1)
    bleed_margin: int = setting(2, unit="px", ge=0)
    min_snr: float = setting(10.0, ge=0)
    max_neighbour_light: float = setting(0.05, ge=0)
    split_gap: float = setting(0.5, unit="d", gt=0)
    tv_epsilon: float = setting(1e-5, gt=0)
    max_iterations: int = setting(200, ge=1)
