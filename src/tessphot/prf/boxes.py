"""PRF images and weighted sums of stars on a box of pixels, from the stamps reaching it.

The consumers' entry points to the PRF engine (:mod:`tessphot.prf.models`): each
(cadence, star) pair whose 13x13 stamp reaches the box is rendered, by the rendering
:func:`~tessphot.prf.models._shared_shapes` chooses, and placed on the box
(:func:`prf_images`) or summed with the box's pixel weights (:func:`prf_sums`).
"""

from __future__ import annotations

import numpy as np

from tessphot.prf.models import HALF_WIDTH, PRFModel, _shared_shapes


def prf_images(
    prf: PRFModel,
    rows: np.ndarray,
    cols: np.ndarray,
    node_rows: np.ndarray,
    node_cols: np.ndarray,
    origin: tuple[int, int],
    shape: tuple[int, int],
    *,
    cadences: np.ndarray | None = None,
    wanted: np.ndarray | None = None,
) -> np.ndarray:
    """Unit-flux PRF images of stars on a box of pixels, one per (cadence, star).

    Parameters
    ----------
    prf : PRFModel
    rows, cols : ndarray, shape (n_cadences, n_stars)
        Science-area positions (finite).
    node_rows, node_cols : ndarray, shape (n_stars,)
        Positions choosing each star's PRF shape.
    origin : (int, int)
        Science-area (row, column) of the box's pixel ``[0, 0]``.
    shape : (int, int)
        (rows, columns) of the box.
    cadences : ndarray of int, shape (n_cadences,), optional
        The cadence of each row of positions: a PRF that changes with time
        (:class:`~tessphot.prf.focus.FocusedPRF`) renders each with its own PRF (None: the
        static PRF).
    wanted : ndarray of bool, shape (n_cadences, n_stars), optional
        The images to render (the others are 0), without ``cadences``; each is the same,
        bit for bit, as when all are rendered (None: all).

    Returns
    -------
    ndarray, shape (n_cadences, n_stars, rows * columns)
        Fraction of each star's light in each pixel of the box (row-major); light falling
        outside the box is lost.
    """
    if wanted is not None and cadences is not None:
        raise ValueError("prf_images renders a subset of the images only without cadences")
    n_t, n_s = rows.shape
    h, w = shape
    size = n_t * n_s * h * w
    # One spare element takes the stamps' pixels off the box.
    out = np.zeros(size + 1)
    found = _stamps_reaching(
        prf, rows, cols, node_rows, node_cols, origin, shape, cadences, wanted=wanted
    )
    if found is not None:
        index, stamps, rr, cc = found
        on = ((rr >= 0) & (rr < h))[:, :, None] & ((cc >= 0) & (cc < w))[:, None, :]
        flat = (index * (h * w))[:, None, None] + (rr[:, :, None] * w + cc[:, None, :])
        out[np.where(on, flat, size)] = stamps
    return out[:size].reshape(n_t, n_s, h * w)


def prf_sums(
    prf: PRFModel,
    rows: np.ndarray,
    cols: np.ndarray,
    node_rows: np.ndarray,
    node_cols: np.ndarray,
    origin: tuple[int, int],
    weights: np.ndarray,
    *,
    wanted: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted sums of unit-flux PRF images over a box: ``prf_images(...) @ weights``.

    Without building the images (e.g. the fraction of each star's light in an aperture).

    Parameters
    ----------
    prf, rows, cols, node_rows, node_cols, origin
        As :func:`prf_images`.
    weights : ndarray, shape (rows, columns)
        The weight of each pixel of the box (e.g. an aperture mask).
    wanted : ndarray of bool, shape (n_cadences, n_stars), optional
        The sums to compute (the others are 0); each is the same, bit for bit, as when all
        are computed (None: all).

    Returns
    -------
    ndarray, shape (n_cadences, n_stars)
    """
    n_t, n_s = rows.shape
    weights = np.asarray(weights, dtype=float)
    out = np.zeros(n_t * n_s)
    found = _stamps_reaching(
        prf, rows, cols, node_rows, node_cols, origin, weights.shape, wanted=wanted
    )
    if found is not None:
        index, stamps, rr, cc = found
        out[index] = np.einsum("nij,nij->n", stamps, _stamp_weights(weights, rr, cc))
    return out.reshape(n_t, n_s)


def _stamp_weights(weights: np.ndarray, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
    """The weights under each stamp (n, 13, 13), zero off the box; ``rr``, ``cc`` (n, 13).

    A stamp reaching the box lies on the zeros padded around it: one window of the padded
    box each (a block copy); pixels beyond the padding would take its edge.
    """
    pad = 2 * HALF_WIDTH + 1
    padded = np.pad(weights, pad)
    rows, cols = rr[:, 0] + pad, cc[:, 0] + pad
    windows = np.lib.stride_tricks.sliding_window_view(padded, (pad, pad))
    inside = (rows >= 0) & (rows < windows.shape[0]) & (cols >= 0) & (cols < windows.shape[1])
    if inside.all():
        return windows[rows, cols]
    rr = np.clip(rr + pad, 0, padded.shape[0] - 1)
    cc = np.clip(cc + pad, 0, padded.shape[1] - 1)
    return padded[rr[:, :, None], cc[:, None, :]]


def _stamps_reaching(
    prf, rows, cols, node_rows, node_cols, origin, shape, cadences=None, *, wanted=None
):
    """The stamps of the (cadence, star) pairs whose footprint reaches a box.

    ``cadences``: those of the rows of positions, for a PRF that changes with time.
    ``wanted`` (without ``cadences``): the pairs to render, each as it is when all are (the
    rendering is chosen from all the pairs reaching the box).

    Returns None if none does; otherwise the pairs' flat indices, their stamps, and the
    box rows and columns of the stamps' pixels (n, 13) (off the box included).
    """
    n_s = rows.shape[1]
    h, w = shape
    rc = np.rint(rows)
    cc = np.rint(cols)
    near = (
        (rc + HALF_WIDTH >= origin[0])
        & (rc - HALF_WIDTH < origin[0] + h)
        & (cc + HALF_WIDTH >= origin[1])
        & (cc - HALF_WIDTH < origin[1] + w)
    )
    t_index, s_index = np.nonzero(near)
    if not t_index.size:
        return None
    if cadences is not None and hasattr(prf, "cadence_stamps"):
        stamps, row0, col0 = prf.cadence_stamps(
            np.asarray(cadences)[t_index], s_index, rows[near], cols[near], node_rows, node_cols
        )
    else:
        shapes = _shared_shapes(prf, node_rows, node_cols, s_index)
        if wanted is not None:
            keep = wanted[near]
            t_index, s_index = t_index[keep], s_index[keep]
            near = near & wanted
            if not t_index.size:
                return None
            if shapes is not None:
                shapes = (shapes[0], shapes[1][keep])
        if shapes is not None:
            tables = prf.shape_tables(*shapes[0])
            stamps, row0, col0 = prf.stamps_of_shapes(tables, shapes[1], rows[near], cols[near])
        else:
            stamps, row0, col0 = prf.kept_stamps(
                rows[near], cols[near], node_rows[s_index], node_cols[s_index]
            )
    k = np.arange(2 * HALF_WIDTH + 1)
    box_rows = (row0 - origin[0])[:, None] + k[None, :]
    box_cols = (col0 - origin[1])[:, None] + k[None, :]
    return t_index * n_s + s_index, stamps, box_rows, box_cols
