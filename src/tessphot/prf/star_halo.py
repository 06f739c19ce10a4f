"""The halos of stars: broad light around them that the PRF's tables do not hold.

Real PRFs have faint extended wings and, around bright stars, a halo reaching tens of
pixels. The PRF models stop at 13x13 px and the effective PRF (:mod:`tessphot.prf.
effective`) is one shape for every star of a region, so a halo that some stars have and
others do not is left out of both. A star with a halo puts a fraction ``h`` of its light
into it rather than into its PRF:

``star = F [(1 - h) PRF + h K]``,

``K`` the halo's unit-sum image, a Moffat-like surface brightness

``I(r) = (1 + (r / r_c)^2)^(-k / 2)`` for ``r <= R`` (zero beyond),

``r_c`` the core radius, ``k`` the index, ``R`` the outer radius: the usual form of a
stellar profile's extended wings. ``h`` is measured per star relative to the effective
PRF (:mod:`tessphot.prf.effective_halo`): it is negative for a star with less broad light
than the PRF holds on average. The surface is sampled at the pixels' centres (the core is
broad against a pixel) and normalised over the disc of radius ``R`` analytically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class HaloShape:
    """The shape of the stars' halo (see the module's docstring).

    Parameters
    ----------
    core : float
        Core radius ``r_c`` [px] (> 0).
    index : float
        Index ``k`` of the surface brightness (> 0).
    radius : float
        Outer radius ``R`` [px] (> ``core``).
    """

    core: float
    index: float
    radius: float

    def __post_init__(self) -> None:
        if not (self.core > 0 and self.index > 0 and self.radius > 0):
            raise ValueError(f"a halo needs a positive core, index and radius, not {self}")

    @property
    def norm(self) -> float:
        """The surface's integral over the disc of radius ``R`` [px^2]."""
        c, k, big = self.core, self.index, self.radius
        x = 1 + (big / c) ** 2
        if abs(k - 2) < 1e-9:
            return float(np.pi * c**2 * np.log(x))
        return float(np.pi * c**2 * (x ** (1 - k / 2) - 1) / (1 - k / 2))

    def surface(self, r: ArrayLike) -> np.ndarray:
        """The unit halo's light per pixel at distances ``r`` [px] from the star."""
        r = np.asarray(r, dtype=float)
        out = (1 + (r / self.core) ** 2) ** (-self.index / 2) / self.norm
        return np.where(r <= self.radius, out, 0.0)

    def image(
        self, rows: ArrayLike, cols: ArrayLike, origin: tuple[int, int], shape: tuple[int, int]
    ) -> np.ndarray:
        """Unit halos of stars at (rows, cols) on a box of pixels.

        Parameters
        ----------
        rows, cols : array_like, shape (n,)
            Science positions of the stars.
        origin : (int, int)
            Science position of the box's pixel ``[0, 0]``.
        shape : (int, int)
            The box's shape.

        Returns
        -------
        ndarray, shape (n, ny, nx)
        """
        rows = np.atleast_1d(np.asarray(rows, dtype=float))
        cols = np.atleast_1d(np.asarray(cols, dtype=float))
        dr = origin[0] + np.arange(shape[0])[None, :] - rows[:, None]
        dc = origin[1] + np.arange(shape[1])[None, :] - cols[:, None]
        return self.surface(np.hypot(dr[:, :, None], dc[:, None, :]))

    def fractions(
        self, mask: np.ndarray, origin: tuple[int, int], rows: ArrayLike, cols: ArrayLike
    ) -> np.ndarray:
        """Fraction of a unit halo on the True pixels of ``mask``, for stars at (rows, cols).

        Parameters
        ----------
        mask : ndarray of bool, shape (ny, nx)
        origin : (int, int)
            Science position of the mask's pixel ``[0, 0]``.
        rows, cols : array_like
            Science positions (any shape; NaN gives NaN).

        Returns
        -------
        ndarray
            Of the positions' shape.
        """
        rows = np.asarray(rows, dtype=float)
        pr, pc = np.nonzero(np.asarray(mask, dtype=bool))
        pr = pr + origin[0]
        pc = pc + origin[1]
        out = np.zeros(rows.size)
        flat_r, flat_c = rows.ravel(), np.asarray(cols, dtype=float).ravel()
        chunk = max(1, 2_000_000 // max(pr.size, 1))
        for start in range(0, rows.size, chunk):
            r = flat_r[start : start + chunk, None] - pr[None, :]
            c = flat_c[start : start + chunk, None] - pc[None, :]
            out[start : start + chunk] = self.surface(np.hypot(r, c)).sum(axis=1)
        out[~(np.isfinite(flat_r) & np.isfinite(flat_c))] = np.nan
        return out.reshape(rows.shape)


@dataclass(frozen=True)
class StarHalos:
    """The halos of a region's catalogued stars.

    Attributes
    ----------
    shape : HaloShape
    starid : ndarray of int, shape (n,)
        The stars measured (TIC numbers) ...
    fraction : ndarray, shape (n,)
        ... their ``h`` relative to the effective PRF.
    trend_tmag, trend : ndarray
        ``h`` of the other stars by brightness: interpolated at their Tmag (the end values
        beyond).
    """

    shape: HaloShape
    starid: np.ndarray
    fraction: np.ndarray
    trend_tmag: np.ndarray
    trend: np.ndarray

    def of(self, starid: ArrayLike, tmag: ArrayLike) -> np.ndarray:
        """``h`` of the stars ``starid`` of brightnesses ``tmag``."""
        starid = np.asarray(starid)
        out = np.interp(np.asarray(tmag, dtype=float), self.trend_tmag, self.trend)
        if self.starid.size:
            order = np.argsort(self.starid)
            sorted_ids = self.starid[order]
            at = np.clip(np.searchsorted(sorted_ids, starid), 0, sorted_ids.size - 1)
            found = sorted_ids[at] == starid
            out = np.where(found, self.fraction[order][at], out)
        return out


def with_halos(
    fractions: np.ndarray,
    halo: np.ndarray,
    shape: HaloShape,
    mask: np.ndarray,
    origin: tuple[int, int],
    rows: np.ndarray,
    cols: np.ndarray,
) -> np.ndarray:
    """The PRF's aperture fractions of stars with their halos: ``(1 - h) f + h f_halo``.

    Parameters
    ----------
    fractions : ndarray, shape (..., n_stars)
        The PRF's fractions of each star's light in the aperture.
    halo : ndarray, shape (n_stars,)
        Each star's ``h`` (0: none, left as it is).
    shape : HaloShape
    mask, origin
        The aperture and its pixel ``[0, 0]``'s science position.
    rows, cols : ndarray, the shape of ``fractions``
        The stars' positions.
    """
    out = np.array(fractions, dtype=float, copy=True)
    for j in np.flatnonzero(halo):
        out[..., j] = (1 - halo[j]) * out[..., j] + halo[j] * shape.fractions(
            mask, origin, rows[..., j], cols[..., j]
        )
    return out
