"""The halo of bright simulated stars: extended wings holding a part of their light.

The PRF models stop at their 13x13 px footprint (tapered to zero from 4.5 px,
:mod:`tessphot.prf.models`); real PRFs have faint wings and a halo reaching tens of pixels.
With ``[simulate.prf] enabled`` a star brighter than ``halo_tmag`` puts ``halo_fraction`` of
its light into a halo (:mod:`tessphot.evaluation.simulate.prf_differences`) whose surface
brightness is a power law with a flat core,

``I(r) = (1 + (r / r_c)^2)^(-index / 2) W(r)``,

``r_c`` = :data:`HALO_CORE_RADIUS`, ``W`` a cosine taper from 1 at
:data:`HALO_TAPER_START` times ``halo_radius`` to 0 at ``halo_radius``: no halo light lies
beyond it. The halo is sampled at the pixel centres of a (2 H + 1)^2 px box around the
star, ``H = ceil(halo_radius)``, and normalised to unit sum over the box, so a star's halo
holds exactly its share of the star's flux. Rendering uses kernels tabulated at
``HALO_PHASES + 1`` sub-pixel phases per axis: the halo is centred on the star within
``1 / (2 HALO_PHASES)`` px. What falls off the simulated region is lost, as the PRF's own
light there; the truth's flux is the star's total flux. Stars more than
``CATALOG_MARGIN`` (10 px) off the region are not simulated, so their halos are missing
from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

#: Radius of the halo's flat core [px].
HALO_CORE_RADIUS = 2.0
#: Fraction of the halo's outer radius where its taper to zero starts.
HALO_TAPER_START = 0.75
#: Sub-pixel phases per pixel of the tabulated halo kernels (per axis).
HALO_PHASES = 9


@dataclass(frozen=True)
class HaloProfile:
    """The halo's shape (see the module's docstring).

    Parameters
    ----------
    radius : float
        Outer radius [px]; the halo is zero beyond it.
    index : float
        Power-law index of the surface brightness.
    core : float
        Radius of the flat core [px].
    """

    radius: float
    index: float
    core: float = HALO_CORE_RADIUS

    @property
    def half(self) -> int:
        """Half-size ``H`` of the halo's box [px]: the box is (2 H + 1)^2 px."""
        return int(np.ceil(self.radius))

    def surface(self, r: ArrayLike) -> np.ndarray:
        """Surface brightness at distances ``r`` [px] from the star (1 at the centre)."""
        r = np.asarray(r, dtype=float)
        start = HALO_TAPER_START * self.radius
        x = np.clip((r - start) / (self.radius - start), 0.0, 1.0)
        taper = 0.5 * (1 + np.cos(np.pi * x))
        return (1 + (r / self.core) ** 2) ** (-self.index / 2) * taper

    def kernels(self) -> np.ndarray:
        """The halo's unit-sum images at every tabulated sub-pixel phase.

        Returns
        -------
        ndarray, shape (HALO_PHASES + 1, HALO_PHASES + 1, 2 H + 1, 2 H + 1)
            ``[p, q]`` is the halo of a star offset by ``p / HALO_PHASES - 1/2`` rows and
            ``q / HALO_PHASES - 1/2`` columns from the centre pixel of the box.
        """
        phases = np.arange(HALO_PHASES + 1) / HALO_PHASES - 0.5
        k = np.arange(-self.half, self.half + 1)
        d = k[None, :] - phases[:, None]
        r = np.hypot(d[:, None, :, None], d[None, :, None, :])
        out = self.surface(r)
        return out / out.sum(axis=(2, 3), keepdims=True)


def render_halos(
    profile: HaloProfile,
    kernels: np.ndarray,
    rows: ArrayLike,
    cols: ArrayLike,
    fluxes: ArrayLike,
    shape: tuple[int, int],
    *,
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Image of the halos of stars on a pixel region.

    Parameters
    ----------
    profile : HaloProfile
        The halo's shape.
    kernels : numpy.ndarray
        ``profile.kernels()``.
    rows, cols : array_like
        The stars' positions (science-area pixels).
    fluxes : array_like
        The light in each star's halo (any unit; the image has the same unit per pixel).
    shape : tuple of int
        Shape (ny, nx) of the region.
    origin : tuple of int
        Science-area (row, column) of the region's pixel ``[0, 0]``.

    Returns
    -------
    numpy.ndarray
        The image; light falling outside the region is lost.
    """
    ny, nx = shape
    image = np.zeros(shape)
    h = profile.half
    rows = np.atleast_1d(np.asarray(rows, dtype=float))
    cols = np.atleast_1d(np.asarray(cols, dtype=float))
    fluxes = np.broadcast_to(np.asarray(fluxes, dtype=float), rows.shape)
    rc, cc = np.rint(rows).astype(int), np.rint(cols).astype(int)
    phase_r = np.clip(np.rint((rows - rc + 0.5) * HALO_PHASES).astype(int), 0, HALO_PHASES)
    phase_c = np.clip(np.rint((cols - cc + 0.5) * HALO_PHASES).astype(int), 0, HALO_PHASES)
    top, left = rc - h - origin[0], cc - h - origin[1]
    for i in np.flatnonzero(fluxes != 0):
        r0, c0 = max(top[i], 0), max(left[i], 0)
        r1, c1 = min(top[i] + 2 * h + 1, ny), min(left[i] + 2 * h + 1, nx)
        if r0 >= r1 or c0 >= c1:
            continue
        kernel = kernels[phase_r[i], phase_c[i]]
        image[r0:r1, c0:c1] += (
            fluxes[i] * kernel[r0 - top[i] : r1 - top[i], c0 - left[i] : c1 - left[i]]
        )
    return image
