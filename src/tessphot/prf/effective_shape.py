"""The PRF's linear distortion: its width, ellipticity, shear and rotation changed.

Real PRFs differ from the models mostly by a few percent in width and shape (issue 18). A
PRF distorted about the star by a 2x2 matrix ``A = I + E`` (rows, columns) is
``T(A^-1 d) / det A`` (the flux kept, the second moments ``M`` become ``A M A^T``). Its first
order in ``E`` is linear (:func:`shape_tables`): the effective PRF's fit measures ``E`` with
its free correction, and a few stars measure these four numbers well where the free
correction's sub-pixel detail needs many. After each pass the tables are distorted exactly
(:func:`distorted`) and the next pass linearises about them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tessphot.prf.models import OVERSAMPLE, TABLE_CENTRE, TABLE_SIZE

#: Elements of the distortion ``E``: ``E_rr``, ``E_rc``, ``E_cr``, ``E_cc``.
N_SHAPE = 4
#: Order of the spline interpolation of the tables when they are distorted.
SPLINE_ORDER = 3


def _offsets() -> tuple[np.ndarray, np.ndarray]:
    d = (np.arange(TABLE_SIZE) - TABLE_CENTRE) / OVERSAMPLE
    dy, dx = np.meshgrid(d, d, indexing="ij")
    return dy, dx


def shape_tables(tables: np.ndarray, taper: np.ndarray) -> np.ndarray:
    """How each table changes with a small distortion ``E``, to first order.

    ``T - (E d) . grad T - tr(E) T``: linear in ``E``'s four elements.

    Parameters
    ----------
    tables : ndarray, shape (n_nodes, TABLE_SIZE, TABLE_SIZE)
    taper : ndarray, shape (TABLE_SIZE, TABLE_SIZE)
        The tables' taper.

    Returns
    -------
    ndarray, shape (n_nodes, N_SHAPE, TABLE_SIZE, TABLE_SIZE)
        By ``E_rr``, ``E_rc``, ``E_cr``, ``E_cc``.
    """
    dy, dx = _offsets()
    grad_y, grad_x = np.gradient(tables, 1 / OVERSAMPLE, axis=(1, 2))
    out = np.stack(
        [-tables - dy * grad_y, -dx * grad_y, -dy * grad_x, -tables - dx * grad_x], axis=1
    )
    return out * taper


def transformed_table(
    coefficients: np.ndarray, matrix: np.ndarray, *, prefilter: bool = False
) -> np.ndarray:
    """A PRF table sampled at offsets mapped by ``matrix^-1``, divided by its determinant.

    Parameters
    ----------
    coefficients : numpy.ndarray, shape (TABLE_SIZE, TABLE_SIZE)
        Spline coefficients of the table (``scipy.ndimage.spline_filter``, order
        :data:`SPLINE_ORDER`, mode ``grid-constant``).
    matrix : numpy.ndarray, shape (2, 2)
        The matrix ``A`` (row, column).
    prefilter : bool
        ``coefficients`` is the table itself: its spline coefficients are computed here
        (``scipy.ndimage.map_coordinates``' own prefilter, with its padding).

    Returns
    -------
    numpy.ndarray, shape (TABLE_SIZE, TABLE_SIZE)
        ``PRF(A^-1 d) / |det A|`` at the table's offsets ``d`` (not normalised: its sum is
        the original's but for the light moved off the footprint or in from beyond it).
    """
    dy, dx = _offsets()
    inverse = np.linalg.inv(matrix)
    source = np.array(
        [inverse[0, 0] * dy + inverse[0, 1] * dx, inverse[1, 0] * dy + inverse[1, 1] * dx]
    )
    values = ndimage.map_coordinates(
        coefficients,
        source * OVERSAMPLE + TABLE_CENTRE,
        order=SPLINE_ORDER,
        prefilter=prefilter,
        mode="grid-constant",
    )
    return values / abs(np.linalg.det(matrix))


def distorted(tables: np.ndarray, distortions: np.ndarray) -> np.ndarray:
    """The tables distorted exactly: ``T(A^-1 d) / det A`` with ``A = I + E`` per node.

    Parameters
    ----------
    tables : ndarray, shape (n_nodes, TABLE_SIZE, TABLE_SIZE)
    distortions : ndarray, shape (n_nodes, N_SHAPE)
        ``E`` of every node.

    Returns
    -------
    ndarray, shape (n_nodes, TABLE_SIZE, TABLE_SIZE)
    """
    out = np.empty_like(tables)
    for n, (table, e) in enumerate(zip(tables, distortions, strict=True)):
        matrix = np.eye(2) + np.asarray(e, dtype=float).reshape(2, 2)
        # Not tapered again: light moved beyond the footprint is lost, as it is from a PRF
        # the simulator distorts (re-tapered, a widened PRF's fluxes came out 0.5-1 % low).
        out[n] = transformed_table(table, matrix, prefilter=True)
    return out
