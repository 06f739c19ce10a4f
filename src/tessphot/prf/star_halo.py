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

from tessphot.prf.knots import bilinear

#: Largest spacing of the grid on which a halo's fractions are interpolated [px] ...
KNOT_SPACING = 0.125
#: ... and at most this fraction of its core radius.
KNOT_SPACING_CORE = 1 / 16


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
            Science positions (any shape; NaN gives NaN). Many positions are interpolated
            (:meth:`pixel_images`).

        Returns
        -------
        ndarray
            Of the positions' shape.
        """
        pr, pc = _pixels(mask, origin)
        return self._interpolated(
            lambda r, c: self._light(pr, pc, r, c).sum(axis=1, keepdims=True), rows, cols
        )[..., 0]

    def pixel_images(
        self, pixels: np.ndarray, origin: tuple[int, int], rows: ArrayLike, cols: ArrayLike
    ) -> np.ndarray:
        """A unit halo's light on the True pixels of ``pixels``, for stars at (rows, cols).

        Parameters
        ----------
        pixels : ndarray of bool, shape (ny, nx)
        origin : (int, int)
            Science position of its pixel ``[0, 0]``.
        rows, cols : array_like
            Science positions (any shape; NaN gives NaN). Many positions are interpolated
            (:meth:`_interpolated`).

        Returns
        -------
        ndarray, shape (*positions, n_pixels)
        """
        pr, pc = _pixels(pixels, origin)
        return self._interpolated(lambda r, c: self._light(pr, pc, r, c), rows, cols)

    def _interpolated(self, values_at, rows: ArrayLike, cols: ArrayLike) -> np.ndarray:
        """``values_at(rows, cols)`` (1-d positions to (n, m) values) at any positions.

        Many positions are interpolated bilinearly on a grid over their range, its spacing
        :data:`KNOT_SPACING` px or :data:`KNOT_SPACING_CORE` of the core if smaller (the
        error is below 0.3 % of the light; the halo holds a few per cent of a star's).
        """
        rows = np.asarray(rows, dtype=float)
        cols = np.asarray(cols, dtype=float)
        ok = np.isfinite(rows) & np.isfinite(cols)
        r, c = rows[ok], cols[ok]
        if not r.size:
            return np.full((*rows.shape, values_at(r[:1], c[:1]).shape[1]), np.nan)
        spacing = min(KNOT_SPACING, KNOT_SPACING_CORE * self.core)
        knots_r, knots_c = _knots(r, spacing), _knots(c, spacing)
        if knots_r.size * knots_c.size >= r.size:
            values = values_at(r, c)
        else:
            grid = values_at(
                np.repeat(knots_r, knots_c.size), np.tile(knots_c, knots_r.size)
            ).reshape(knots_r.size, knots_c.size, -1)
            values = bilinear(knots_r, knots_c, grid, r, c)
        out = np.full((*rows.shape, values.shape[1]), np.nan)
        out[ok] = values
        return out

    def _light(self, pr: np.ndarray, pc: np.ndarray, rows: np.ndarray, cols: np.ndarray):
        """The unit halo on pixels (pr, pc) of stars at 1-d (rows, cols), (n, n_pixels)."""
        return self.surface(np.hypot(rows[:, None] - pr[None, :], cols[:, None] - pc[None, :]))


def _pixels(mask: np.ndarray, origin: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Science rows and columns of the True pixels of ``mask``."""
    pr, pc = np.nonzero(np.asarray(mask, dtype=bool))
    return pr + origin[0], pc + origin[1]


def _knots(values: np.ndarray, spacing: float) -> np.ndarray:
    """Knots ``spacing`` apart spanning ``values`` (at least two)."""
    lo = np.floor(values.min() / spacing) * spacing
    n = int(np.ceil((values.max() - lo) / spacing)) + 1
    return lo + spacing * np.arange(max(n, 2))


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
    scatter : float
        The measured stars' scatter about the trend: a share within it of zero is taken as
        none (what the PRF holds: a halo not told from the stars' differences about the PRF;
        and none costs nothing in the fits).
    """

    shape: HaloShape
    starid: np.ndarray
    fraction: np.ndarray
    trend_tmag: np.ndarray
    trend: np.ndarray
    scatter: float = 0.0

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
        return np.where(np.abs(out) > self.scatter, out, 0.0)


def images_with_halos(
    images: np.ndarray,
    halo: np.ndarray,
    shape: HaloShape,
    rows: np.ndarray,
    cols: np.ndarray,
    origin: tuple[int, int],
    box_shape: tuple[int, int],
    pixels: np.ndarray,
) -> np.ndarray:
    """Unit PRF images of stars with their halos: ``(1 - h) P + h K``.

    Parameters
    ----------
    images : ndarray, shape (n_cadences, n_stars, n_pixels)
        The PRF's images on the True pixels of ``pixels``.
    halo : ndarray, shape (n_stars,)
        Each star's ``h`` (0: left as it is).
    shape : HaloShape
    rows, cols : ndarray, shape (n_cadences, n_stars)
        The stars' positions.
    origin : (int, int)
        Science position of the box's pixel ``[0, 0]``.
    box_shape : (int, int)
        The box's shape.
    pixels : ndarray of bool, shape (ny * nx,) or (ny, nx)
        The box's pixels the images are on.
    """
    out = np.array(images, dtype=float, copy=True)
    mask = np.asarray(pixels, dtype=bool).reshape(box_shape)
    for j in np.flatnonzero(halo):
        light = shape.pixel_images(mask, origin, rows[:, j], cols[:, j])
        out[:, j] = (1 - halo[j]) * out[:, j] + halo[j] * light
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
