"""The PRF engine: a PRF tabulated at CCD positions, rendered into stamps and images.

A PRF gives the fraction of a star's flux that falls into a pixel, as a function of the
offset between the pixel centre and the star. :class:`PRFModel` holds over-sampled tables
(9 samples per pixel over 13x13 pixels) at a grid of CCD positions and interpolates between
them; the SPOC models (:mod:`tessphot.prf.spoc`) and the analytic model
(:mod:`tessphot.prf.analytic`) are its two variants.

Positions follow the convention of :mod:`tessphot.constants` (0-based science-area
``(row, column)``, pixel centres on integers). Every table is tapered smoothly to zero
between radii of 4.5 and 6.5 px (the SPOC models hold a faint flat pedestal out to the edge
of their 13x13 px footprint, which would otherwise draw a sharp square around bright stars)
and normalised to unit flux.
"""

from __future__ import annotations

import numpy as np

#: Over-sampling of the tabulated PRFs [samples per pixel].
OVERSAMPLE = 9
#: Half-width of the tabulated PRF footprint [pixels]; the footprint is 13x13 pixels.
HALF_WIDTH = 6
#: Number of samples along one axis of a table.
TABLE_SIZE = OVERSAMPLE * (2 * HALF_WIDTH + 1)
#: Index of the sample at zero offset.
TABLE_CENTRE = TABLE_SIZE // 2
#: Radius where the circular cosine taper of the tabulated PRFs starts [pixels]; it reaches
#: zero at the footprint's edge (6.5 px).
TAPER_START = 4.5
#: Stars rendered per chunk (bounds the memory of an image with very many stars).
RENDER_CHUNK = 16384


class PRFModel:
    """A PRF tabulated at one or more CCD positions, rendered by interpolation.

    Parameters
    ----------
    tables : ndarray, shape (n_nodes, TABLE_SIZE, TABLE_SIZE)
        Over-sampled PRF tables; sample ``(i, j)`` is the flux fraction in a pixel whose
        centre is ``((i - TABLE_CENTRE) / 9, (j - TABLE_CENTRE) / 9)`` pixels from the star.
    node_rows, node_cols : array_like
        Sorted science-area rows and columns of the grid of tabulated positions; the tables
        are ordered row-major over this grid. A single node means a position-independent PRF.
    name : str
        Description for logs and HDF5 attributes.
    short_name : str
        At most 40 characters, for FITS headers.
    """

    def __init__(self, tables: np.ndarray, node_rows, node_cols, name: str, short_name: str):
        tables = np.asarray(tables, dtype=np.float64) * _edge_taper()
        tables *= OVERSAMPLE**2 / tables.sum(axis=(1, 2), keepdims=True)
        self.node_rows = np.atleast_1d(np.asarray(node_rows, dtype=float))
        self.node_cols = np.atleast_1d(np.asarray(node_cols, dtype=float))
        if tables.shape != (self.node_rows.size * self.node_cols.size, TABLE_SIZE, TABLE_SIZE):
            raise ValueError(f"PRF tables have shape {tables.shape}, not matching the node grid")
        # One zero sample of padding on every side makes out-of-footprint lookups return 0.
        padded = np.pad(tables, ((0, 0), (1, 1), (1, 1)))
        # _decimated[node, oy, ox] = padded[node, oy::9, ox::9] (13 x 13): the pixel-spaced
        # samples for every sub-pixel offset, so a stamp is a contiguous block copy.
        n = 2 * HALF_WIDTH + 1
        offsets = np.arange(OVERSAMPLE + 2)
        idx = offsets[:, None] + OVERSAMPLE * np.arange(n)[None, :]
        self._decimated = np.ascontiguousarray(
            padded[:, idx[:, None, :, None], idx[None, :, None, :]], dtype=np.float32
        )
        self.name = name
        self.short_name = short_name[:40]

    # ------------------------------------------------------------------------------------
    def _node_weights(self, rows: np.ndarray, cols: np.ndarray):
        """Bilinear weights of the 4 grid nodes around each position (clamped at the grid)."""

        def axis(nodes, x):
            if nodes.size == 1:
                zero = np.zeros(x.shape, dtype=int)
                return zero, zero, np.zeros(x.shape)
            x = np.clip(x, nodes[0], nodes[-1])
            i = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, nodes.size - 2)
            frac = (x - nodes[i]) / (nodes[i + 1] - nodes[i])
            return i, i + 1, frac

        r0, r1, fr = axis(self.node_rows, rows)
        c0, c1, fc = axis(self.node_cols, cols)
        ncol = self.node_cols.size
        nodes = np.stack([r0 * ncol + c0, r0 * ncol + c1, r1 * ncol + c0, r1 * ncol + c1])
        weights = np.stack([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc])
        return nodes, weights

    def stamps(self, rows, cols, node_rows=None, node_cols=None):
        """PRF images of stars at the given positions.

        Parameters
        ----------
        rows, cols : array_like, shape (n,)
            Star positions (science-area pixels).
        node_rows, node_cols : array_like, optional
            Positions used to choose the PRF shape (defaults to ``rows``, ``cols``); lets a
            caller keep the shape fixed while the star moves by a small jitter.

        Returns
        -------
        stamps : ndarray, shape (n, 13, 13)
            Flux fractions, each stamp normalised to sum to 1.
        row0, col0 : ndarray of int, shape (n,)
            Science-area row and column of each stamp's pixel ``[0, 0]``.
        """
        rows = np.atleast_1d(np.asarray(rows, dtype=float))
        cols = np.atleast_1d(np.asarray(cols, dtype=float))
        nodes, weights = self._node_weights(
            rows if node_rows is None else np.atleast_1d(np.asarray(node_rows, dtype=float)),
            cols if node_cols is None else np.atleast_1d(np.asarray(node_cols, dtype=float)),
        )
        rc = np.rint(rows).astype(int)
        cc = np.rint(cols).astype(int)
        # Stamp pixel k (-6..6) samples the padded table at TABLE_CENTRE + 1 + 9 (k - frac):
        # a stride-9 decimation starting at offset base (0-9), interpolated linearly between
        # the decimations at offsets base and base + 1 (pre-computed in self._decimated).
        sy = TABLE_CENTRE + 1 - OVERSAMPLE * HALF_WIDTH - OVERSAMPLE * (rows - rc)
        sx = TABLE_CENTRE + 1 - OVERSAMPLE * HALF_WIDTH - OVERSAMPLE * (cols - cc)
        by = np.clip(np.floor(sy).astype(int), 0, OVERSAMPLE)
        bx = np.clip(np.floor(sx).astype(int), 0, OVERSAMPLE)
        wy = np.clip(sy - by, 0.0, 1.0)
        wx = np.clip(sx - bx, 0.0, 1.0)

        out = np.zeros((rows.size, 2 * HALF_WIDTH + 1, 2 * HALF_WIDTH + 1), dtype=np.float32)
        for node, weight in zip(nodes, weights, strict=True):
            if not np.any(weight):
                continue
            for dy, fy in ((0, 1 - wy), (1, wy)):
                for dx, fx in ((0, 1 - wx), (1, wx)):
                    w = (weight * fy * fx).astype(np.float32)
                    out += w[:, None, None] * self._decimated[node, by + dy, bx + dx]
        out = out.astype(np.float64)
        out /= out.sum(axis=(1, 2), keepdims=True)
        return out, rc - HALF_WIDTH, cc - HALF_WIDTH

    def render(self, rows, cols, fluxes, shape, origin=(0, 0), node_rows=None, node_cols=None):
        """Image of many stars on a pixel region.

        Parameters
        ----------
        rows, cols : array_like, shape (n,)
            Star positions (science-area pixels).
        fluxes : array_like, shape (n,)
            Star fluxes (any unit; the image has the same unit per pixel).
        shape : tuple of int
            Shape (ny, nx) of the region.
        origin : tuple of int
            Science-area (row, column) of the region's pixel ``[0, 0]``.
        node_rows, node_cols : array_like, optional
            See :meth:`stamps`.

        Returns
        -------
        ndarray
            The image; light falling outside the region is lost.
        """
        ny, nx = shape
        rows = np.atleast_1d(np.asarray(rows, dtype=float))
        cols = np.atleast_1d(np.asarray(cols, dtype=float))
        fluxes = np.broadcast_to(np.asarray(fluxes, dtype=float), rows.shape)
        node_rows = rows if node_rows is None else np.asarray(node_rows, dtype=float)
        node_cols = cols if node_cols is None else np.asarray(node_cols, dtype=float)
        k = np.arange(2 * HALF_WIDTH + 1)
        offsets = k[:, None] * nx + k[None, :]
        flat = np.zeros(ny * nx)
        for start in range(0, rows.size, RENDER_CHUNK):
            sl = slice(start, start + RENDER_CHUNK)
            stamps, row0, col0 = self.stamps(rows[sl], cols[sl], node_rows[sl], node_cols[sl])
            values = stamps * fluxes[sl, None, None]
            r0, c0 = row0 - origin[0], col0 - origin[1]
            inside = (r0 >= 0) & (r0 + k[-1] < ny) & (c0 >= 0) & (c0 + k[-1] < nx)
            # Stamps wholly on the region: one linear index per stamp plus fixed offsets.
            index = (r0[inside] * nx + c0[inside])[:, None, None] + offsets
            flat += np.bincount(index.ravel(), weights=values[inside].ravel(), minlength=ny * nx)
            # Stamps across the edge: keep only their pixels on the region.
            edge = ~inside
            if np.any(edge):
                pr, pc = np.broadcast_arrays(
                    r0[edge, None, None] + k[None, :, None], c0[edge, None, None] + k[None, None, :]
                )
                on = (pr >= 0) & (pr < ny) & (pc >= 0) & (pc < nx)
                flat += np.bincount(
                    pr[on] * nx + pc[on], weights=values[edge][on], minlength=ny * nx
                )
        return flat.reshape(ny, nx)


def _edge_taper() -> np.ndarray:
    """Circular window bringing a table smoothly to zero from ``TAPER_START`` to the edge.

    The tabulated footprint ends at 6.5 px where the SPOC PRFs still hold a faint, flat
    pedestal; cut there, it draws a square around bright stars.
    """
    d = (np.arange(TABLE_SIZE) - TABLE_CENTRE) / OVERSAMPLE
    r = np.hypot(d[:, None], d[None, :])
    edge = HALF_WIDTH + 0.5
    x = np.clip((r - TAPER_START) / (edge - TAPER_START), 0.0, 1.0)
    return 0.5 * (1 + np.cos(np.pi * x))


def prf_images(
    prf: PRFModel,
    rows: np.ndarray,
    cols: np.ndarray,
    node_rows: np.ndarray,
    node_cols: np.ndarray,
    origin: tuple[int, int],
    shape: tuple[int, int],
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

    Returns
    -------
    ndarray, shape (n_cadences, n_stars, rows * columns)
        Fraction of each star's light in each pixel of the box (row-major); light falling
        outside the box is lost.
    """
    n_t, n_s = rows.shape
    stamps, row0, col0 = prf.stamps(
        rows.ravel(), cols.ravel(), np.tile(node_rows, n_t), np.tile(node_cols, n_t)
    )
    h, w = shape
    k = np.arange(2 * HALF_WIDTH + 1)
    rr = (row0 - origin[0])[:, None] + k[None, :]
    cc = (col0 - origin[1])[:, None] + k[None, :]
    inside = ((rr >= 0) & (rr < h))[:, :, None] & ((cc >= 0) & (cc < w))[:, None, :]
    index = np.clip(rr, 0, h - 1)[:, :, None] * w + np.clip(cc, 0, w - 1)[:, None, :]
    index = index + (np.arange(n_t * n_s) * h * w)[:, None, None]
    out = np.zeros(n_t * n_s * h * w)
    out[index[inside]] = stamps[inside]
    return out.reshape(n_t, n_s, h * w)
