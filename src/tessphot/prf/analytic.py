"""A TESS-like PRF without any files: a Gaussian core plus Moffat wings.

The core has a FWHM of ~1.9 px; both parts are integrated over pixels and tabulated like
the SPOC models (:class:`tessphot.prf.models.PRFModel`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, special

from tessphot.prf.models import OVERSAMPLE, TABLE_CENTRE, TABLE_SIZE, PRFModel

#: Defaults of the analytic PRF.
ANALYTIC_CORE_FWHM = 1.9  # [pixels]
ANALYTIC_WING_FRACTION = 0.08  # fraction of the flux in the Moffat wings
ANALYTIC_WING_ALPHA = 2.0  # Moffat core width [pixels]
ANALYTIC_WING_BETA = 2.5  # Moffat power index


class AnalyticPRF(PRFModel):
    """A TESS-like PRF without files: Gaussian core plus Moffat wings, pixel-integrated.

    Parameters
    ----------
    fwhm : float
        FWHM of the Gaussian core [pixels].
    wing_fraction : float
        Fraction of the flux in the wings.
    wing_alpha, wing_beta : float
        Moffat parameters of the wings.
    """

    def __init__(
        self,
        fwhm: float = ANALYTIC_CORE_FWHM,
        wing_fraction: float = ANALYTIC_WING_FRACTION,
        wing_alpha: float = ANALYTIC_WING_ALPHA,
        wing_beta: float = ANALYTIC_WING_BETA,
    ):
        offsets = (np.arange(TABLE_SIZE) - TABLE_CENTRE) / OVERSAMPLE
        sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))

        def gauss_pixel(d):
            # Fraction of a unit Gaussian inside a pixel centred at offset d.
            s = np.sqrt(2) * sigma
            return 0.5 * (special.erf((d + 0.5) / s) - special.erf((d - 0.5) / s))

        core = np.outer(gauss_pixel(offsets), gauss_pixel(offsets))
        # Moffat wings sampled finely and integrated over a pixel by a box filter.
        fine = np.arange(TABLE_SIZE + OVERSAMPLE - 1) - (TABLE_SIZE + OVERSAMPLE - 1) // 2
        fine = fine / OVERSAMPLE
        r2 = fine[:, None] ** 2 + fine[None, :] ** 2
        moffat = (wing_beta - 1) / (np.pi * wing_alpha**2) * (1 + r2 / wing_alpha**2) ** -wing_beta
        moffat = ndimage.uniform_filter(moffat, OVERSAMPLE, mode="constant")
        half = (OVERSAMPLE - 1) // 2
        wings = moffat[half : half + TABLE_SIZE, half : half + TABLE_SIZE]
        table = (1 - wing_fraction) * core / core.sum() + wing_fraction * wings / wings.sum()
        table *= OVERSAMPLE**2
        super().__init__(
            table[None],
            [0.0],
            [0.0],
            name=f"analytic PRF (Gaussian FWHM {fwhm} px + {wing_fraction:.0%} Moffat wings)",
            short_name=f"analytic FWHM {fwhm} px + {wing_fraction:.0%} wings",
        )
