"""The smooth background surface through a mesh, evaluated on a whole frame or on a stamp.

The prepare stage subtracts, and the prepared file stores, the background as its mesh: one
value per box, at the boxes' centres. :class:`MeshSurface` is the one definition of the
surface through it, used by prepare (whole frames) and by the reader of the prepared file
(one star's stamp), so a stamp's background is the very surface that was subtracted.

The surface is a tensor product of one operator per axis, ``B(t) = R C(t) Q^T`` with
``C(t) = R_n^-1 M(t) Q_n^-T`` (``M``: the mesh of frame ``t``):

* both axes with several boxes: the bicubic interpolating spline through the box centres
  (lower order for fewer than 4 boxes on an axis), extended to the edges by its end
  polynomials: ``R``, ``Q`` are B-spline design matrices, ``C`` the spline's coefficients;
* one axis with a single box: a least-squares straight line along the other axis, constant
  along this one;
* a single box: a constant.

The spline's B-spline basis is local (4 functions at a pixel), so a stamp needs a few
coefficients per frame: the coefficients of every frame are computed once, then a stamp over
all cadences costs a few small matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import BSpline, RectBivariateSpline

#: Highest degree of the interpolating spline (bicubic).
SPLINE_DEGREE = 3
#: Basis matrices over more positions than this are kept for the next frame [px].
CACHED_AXIS_LENGTH = 64


@dataclass(frozen=True)
class _Axis:
    """One axis of the surface: ``values(x) = basis(x) @ inverse @ mesh_values``."""

    kind: str  # "spline", "line" or "constant"
    centres: np.ndarray
    inverse: np.ndarray  # (n_coefficients, n_boxes)
    knots: np.ndarray | None = None
    degree: int = 0
    #: Basis matrices of whole axes (prepare evaluates every frame on the same pixels).
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def basis(self, x: np.ndarray) -> np.ndarray:
        """Dense basis matrix (len(x), n_coefficients) at positions ``x`` [px]."""
        x = np.asarray(x, dtype=float)
        if x.size > CACHED_AXIS_LENGTH:
            key = x.tobytes()
            if key not in self._cache:
                self._cache.clear()
                self._cache[key] = self._basis(x)
            return self._cache[key]
        return self._basis(x)

    def _basis(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "constant":
            return np.ones((x.size, 1))
        if self.kind == "line":
            return np.stack([np.ones_like(x), x], axis=1)
        return BSpline.design_matrix(x, self.knots, self.degree, extrapolate=True).toarray()

    def support(self, x: np.ndarray) -> tuple[int, int]:
        """The coefficients ``lo:hi`` that positions ``x`` depend on."""
        if self.kind != "spline":
            return 0, self.inverse.shape[0]
        t, k = self.knots, self.degree
        n = self.inverse.shape[0]
        first = np.clip(np.searchsorted(t, np.min(x), side="right") - 1, k, n - 1)
        last = np.clip(np.searchsorted(t, np.max(x), side="right") - 1, k, n - 1)
        return int(first - k), int(last + 1)


def _axis(centres: np.ndarray, knots: np.ndarray | None, degree: int, other_boxes: int) -> _Axis:
    centres = np.asarray(centres, dtype=float)
    if centres.size == 1:
        return _Axis("constant", centres, np.ones((1, 1)))
    if other_boxes == 1:
        design = np.stack([np.ones_like(centres), centres], axis=1)
        return _Axis("line", centres, np.linalg.pinv(design))
    collocation = BSpline.design_matrix(centres, knots, degree).toarray()
    return _Axis("spline", centres, np.linalg.inv(collocation), knots, degree)


class MeshSurface:
    """The background surface through the mesh of a region.

    Parameters
    ----------
    shape : tuple of int
        Region shape (ny, nx) [px].
    centres : tuple of numpy.ndarray
        Row and column coordinates of the box centres [px, region pixel coordinates].
    """

    def __init__(self, shape: tuple[int, int], centres: tuple[np.ndarray, np.ndarray]):
        self.shape = tuple(int(v) for v in shape)
        ry, rx = (np.asarray(c, dtype=float) for c in centres)
        self.mesh_shape = (ry.size, rx.size)
        knots: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
        kr, kc = min(SPLINE_DEGREE, ry.size - 1), min(SPLINE_DEGREE, rx.size - 1)
        if ry.size > 1 and rx.size > 1:
            # The knots of FITPACK's interpolating spline (s = 0) over the region: they
            # do not depend on the values.
            bbox = [
                min(0.0, ry[0]),
                max(self.shape[0] - 1.0, ry[-1]),
                min(0.0, rx[0]),
                max(self.shape[1] - 1.0, rx[-1]),
            ]
            zeros = np.zeros((ry.size, rx.size))
            knots = RectBivariateSpline(ry, rx, zeros, bbox=bbox, kx=kr, ky=kc).get_knots()
        self.rows = _axis(ry, knots[0], kr, rx.size)
        self.cols = _axis(rx, knots[1], kc, ry.size)

    def coefficients(self, meshes: np.ndarray) -> np.ndarray:
        """The surface's coefficients of a mesh (my, mx) or of meshes (n, my, mx)."""
        meshes = np.asarray(meshes, dtype=float)
        return self.rows.inverse @ meshes @ self.cols.inverse.T

    def evaluate(self, mesh: np.ndarray, rows=None, cols=None) -> np.ndarray:
        """The surface of one mesh at rows x columns (default every pixel of the region)."""
        rows = np.arange(self.shape[0], dtype=float) if rows is None else rows
        cols = np.arange(self.shape[1], dtype=float) if cols is None else cols
        return self.evaluate_coefficients(self.coefficients(mesh), rows, cols)

    def evaluate_coefficients(
        self, coefficients: np.ndarray, rows: np.ndarray, cols: np.ndarray
    ) -> np.ndarray:
        """The surface at rows x columns from coefficients (p, q) or (n, p, q).

        Only the coefficients the positions depend on are used (a stamp: a few per axis).
        """
        rows = np.asarray(rows, dtype=float)
        cols = np.asarray(cols, dtype=float)
        r0, r1 = self.rows.support(rows)
        c0, c1 = self.cols.support(cols)
        left = self.rows.basis(rows)[:, r0:r1]
        right = self.cols.basis(cols)[:, c0:c1]
        return left @ coefficients[..., r0:r1, c0:c1] @ right.T
