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

from collections import OrderedDict
from collections.abc import Callable

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
#: Stamps interpolated per block: a block's stamps and temporaries (~0.7 MB each) stay in a
#: core's cache; 1024 took 0.56 of the time of 16384 stamps at once.
ACCUMULATE_CHUNK = 1024
#: Stamps per star from which a multi-node PRF's shape is interpolated once per star
#: (:meth:`PRFModel.shape_tables`) rather than once per stamp.
SHAPE_TABLE_MIN_STAMPS = 32
#: Stamps a model keeps for their next rendering (:meth:`PRFModel.kept_stamps`: a star at a
#: position of its own, e.g. its mean one, is rendered for every target near it).
KEPT_STAMPS = 65536
#: Largest call whose stamps are kept (larger ones move the stars cadence by cadence).
KEPT_STAMPS_CALL = 4096
#: Most PRF shapes (:meth:`PRFModel.shape_tables`, 82 kB each) kept for later calls: the
#: stars near a target are asked for again by its neighbours' tasks.
KEPT_SHAPES = 256


def _from_kept(
    kept: OrderedDict,
    keys: list,
    make: Callable[[list[int]], np.ndarray],
    limit: int,
    *,
    copy=False,
) -> list:
    """The values of ``keys`` in ``kept``; the missing ones made by ``make(their indices)``.

    The values made are kept (each its own copy with ``copy``), and the oldest dropped so
    that at most ``limit`` stay. ``kept`` is ordered by insertion, so that dropping the
    oldest costs the same however many were dropped before (a plain dict's first item is
    found by skipping every slot deleted since it was last resized: on a full cache that
    took a third of the photometry's time).
    """
    found = [kept.get(key) for key in keys]
    missing = [i for i, value in enumerate(found) if value is None]
    if missing:
        for i, value in zip(missing, make(missing), strict=True):
            found[i] = kept[keys[i]] = value.copy() if copy else value
        while len(kept) > limit:
            kept.popitem(last=False)
    return found


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
    taper : bool
        Bring the tables smoothly to zero towards the footprint's edge (False: tables that
        already are, e.g. those of another model's :attr:`tables`, transformed).

    Attributes
    ----------
    tables : ndarray, shape (n_nodes, TABLE_SIZE, TABLE_SIZE)
        The tables as rendered (tapered, each normalised to ``OVERSAMPLE**2``, i.e. unit flux).
    """

    def __init__(
        self,
        tables: np.ndarray,
        node_rows,
        node_cols,
        name: str,
        short_name: str,
        *,
        taper: bool = True,
    ):
        tables = np.array(tables, dtype=np.float64)
        if taper:
            tables *= edge_taper()
        tables *= OVERSAMPLE**2 / tables.sum(axis=(1, 2), keepdims=True)
        self.tables = tables
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
        #: Stamps rendered by :meth:`kept_stamps`, by (row, col, node_row, node_col).
        self._kept: OrderedDict[tuple[float, float, float, float], np.ndarray] = OrderedDict()
        #: Shapes made by :meth:`shape_tables`, by (node_row, node_col).
        self._kept_shapes: OrderedDict[tuple[float, float], np.ndarray] = OrderedDict()

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

    def node_weights(self, rows, cols) -> tuple[np.ndarray, np.ndarray]:
        """The grid nodes around positions and their bilinear weights, as rendering uses.

        Parameters
        ----------
        rows, cols : array_like, shape (n,)
            Positions (science-area pixels; clamped to the grid of nodes).

        Returns
        -------
        nodes : ndarray of int, shape (4, n)
            Indices of the four nodes (into :attr:`tables`; repeated on a one-node axis).
        weights : ndarray, shape (4, n)
            Their weights (summing to 1).
        """
        return self._node_weights(
            np.atleast_1d(np.asarray(rows, dtype=float)),
            np.atleast_1d(np.asarray(cols, dtype=float)),
        )

    def tables_at(self, rows, cols) -> np.ndarray:
        """The tables at given positions, interpolated between the nodes as rendering does.

        Parameters
        ----------
        rows, cols : array_like, shape (n,)
            Positions (science-area pixels; clamped to the grid of nodes).

        Returns
        -------
        ndarray, shape (n, TABLE_SIZE, TABLE_SIZE)
            The tables (unit flux: each sums to ``OVERSAMPLE**2``).
        """
        nodes, weights = self.node_weights(rows, cols)
        out = np.zeros((nodes.shape[1], TABLE_SIZE, TABLE_SIZE))
        for node, weight in zip(nodes, weights, strict=True):
            out += weight[:, None, None] * self.tables[node]
        return out

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
        out, rc, cc, sub = _stamp_frame(rows, cols)
        for node, weight in zip(nodes, weights, strict=True):
            if np.any(weight):
                _accumulate(out, self._decimated, node, weight, sub)
        return _normalised(out), rc - HALF_WIDTH, cc - HALF_WIDTH

    def kept_stamps(
        self, rows: np.ndarray, cols: np.ndarray, node_rows: np.ndarray, node_cols: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`stamps`, those rendered by an earlier call taken from it.

        A stamp depends on its position and node position only (not on the stamps rendered
        with it), so a kept one is the same, bit for bit. The last :data:`KEPT_STAMPS` are
        kept, of calls of at most :data:`KEPT_STAMPS_CALL` stamps.

        Parameters
        ----------
        rows, cols, node_rows, node_cols : ndarray, shape (n,)
            As :meth:`stamps`.

        Returns
        -------
        stamps, row0, col0
            As :meth:`stamps`.
        """
        if rows.size > KEPT_STAMPS_CALL:
            return self.stamps(rows, cols, node_rows, node_cols)
        keys = list(
            zip(rows.tolist(), cols.tolist(), node_rows.tolist(), node_cols.tolist(), strict=True)
        )
        found = _from_kept(
            self._kept,
            keys,
            lambda m: self.stamps(rows[m], cols[m], node_rows[m], node_cols[m])[0],
            KEPT_STAMPS,
        )
        stamps = np.array(found).reshape(rows.size, 2 * HALF_WIDTH + 1, 2 * HALF_WIDTH + 1)
        rc = np.rint(rows).astype(int)
        cc = np.rint(cols).astype(int)
        return stamps, rc - HALF_WIDTH, cc - HALF_WIDTH

    def shape_tables(self, node_rows, node_cols) -> np.ndarray:
        """The PRF shape at each position, its grid nodes' tables combined once.

        For many stamps of few stars (e.g. a star over every jitter offset) the node
        interpolation is done once per star here, not once per stamp
        (:meth:`stamps_of_shapes`). The last :data:`KEPT_SHAPES` shapes are kept: a shape
        depends on its position only, so a kept one is the same, bit for bit.

        Parameters
        ----------
        node_rows, node_cols : array_like, shape (n,)
            Positions choosing each shape (science-area pixels).

        Returns
        -------
        ndarray, shape (n, 11, 11, 13, 13), float32
            The pixel-spaced samples of each shape for every sub-pixel offset.
        """
        rows = np.atleast_1d(np.asarray(node_rows, dtype=float))
        cols = np.atleast_1d(np.asarray(node_cols, dtype=float))
        keys = list(zip(rows.tolist(), cols.tolist(), strict=True))
        # Each its own copy: a kept row would keep the whole new array alive.
        found = _from_kept(
            self._kept_shapes,
            keys,
            lambda m: self._new_shapes(rows[m], cols[m]),
            KEPT_SHAPES,
            copy=True,
        )
        if not found:
            return np.zeros((0, *self._decimated.shape[1:]), dtype=np.float32)
        return np.stack(found)

    def _new_shapes(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """:meth:`shape_tables` computed (each shape on its own: the same in any company)."""
        nodes, weights = self._node_weights(rows, cols)
        tables = np.zeros((nodes.shape[1], *self._decimated.shape[1:]), dtype=np.float32)
        for node, weight in zip(nodes, weights, strict=True):
            if np.any(weight):
                w = weight.astype(np.float32)[:, None, None, None, None]
                tables += w * self._decimated[node]
        return tables

    @staticmethod
    def stamps_of_shapes(tables: np.ndarray, which: np.ndarray, rows, cols):
        """PRF images of stars of the given shapes (:meth:`shape_tables`) at given positions.

        Parameters
        ----------
        tables : ndarray, shape (m, 11, 11, 13, 13)
            Shapes from :meth:`shape_tables`.
        which : ndarray of int, shape (n,)
            The shape of each star.
        rows, cols : array_like, shape (n,)
            Star positions (science-area pixels).

        Returns
        -------
        stamps, row0, col0
            As :meth:`stamps`.
        """
        rows = np.atleast_1d(np.asarray(rows, dtype=float))
        cols = np.atleast_1d(np.asarray(cols, dtype=float))
        out, rc, cc, sub = _stamp_frame(rows, cols)
        _accumulate(out, tables, np.asarray(which), np.ones(rows.size), sub)
        return _normalised(out), rc - HALF_WIDTH, cc - HALF_WIDTH

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
        # By row: each chunk's stamps cover a band of rows, which alone it adds to.
        order = np.argsort(rows, kind="stable")
        for start in range(0, rows.size, RENDER_CHUNK):
            sl = order[start : start + RENDER_CHUNK]
            stamps, row0, col0 = self.stamps(rows[sl], cols[sl], node_rows[sl], node_cols[sl])
            values = stamps * fluxes[sl, None, None]
            r0, c0 = row0 - origin[0], col0 - origin[1]
            inside = (r0 >= 0) & (r0 + k[-1] < ny) & (c0 >= 0) & (c0 + k[-1] < nx)
            # Stamps wholly on the region: one linear index per stamp plus fixed offsets.
            index = (r0[inside] * nx + c0[inside])[:, None, None] + offsets
            _add_counts(flat, index, values[inside])
            # Stamps across the edge: keep only their pixels on the region.
            edge = ~inside
            if np.any(edge):
                pr, pc = np.broadcast_arrays(
                    r0[edge, None, None] + k[None, :, None], c0[edge, None, None] + k[None, None, :]
                )
                on = (pr >= 0) & (pr < ny) & (pc >= 0) & (pc < nx)
                _add_counts(flat, pr[on] * nx + pc[on], values[edge][on])
        return flat.reshape(ny, nx)


def _add_counts(flat: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
    """Add ``values`` to ``flat`` at ``index`` (repeated indices summed), on their span only."""
    if not index.size:
        return
    lo, hi = int(index.min()), int(index.max()) + 1
    flat[lo:hi] += np.bincount(index.ravel() - lo, weights=values.ravel(), minlength=hi - lo)


def _shared_shapes(prf: PRFModel, node_rows, node_cols, s_index: np.ndarray):
    """The distinct PRF shapes of the stamps to render, when there are few enough of them.

    Returns None when interpolating the shape once per stamp is cheaper (a one-node PRF,
    or fewer than ``SHAPE_TABLE_MIN_STAMPS`` stamps per shape); otherwise the shapes'
    positions ``(rows, cols)`` and the shape of each stamp.
    """
    if prf.node_rows.size * prf.node_cols.size == 1:
        return None
    # The stars with stamps, in order, and each stamp's rank among them (np.unique's).
    present = np.zeros(node_rows.size, dtype=bool)
    present[s_index] = True
    stars = np.flatnonzero(present)
    star_of = (np.cumsum(present) - 1)[s_index]
    if s_index.size < SHAPE_TABLE_MIN_STAMPS * stars.size:
        # Stars may share a shape (e.g. the interpolation knots of one star): the distinct
        # positions, sorted by row then column.
        rows, cols = node_rows[stars], node_cols[stars]
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
        first = np.ones(order.size, dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        if s_index.size < SHAPE_TABLE_MIN_STAMPS * np.count_nonzero(first):
            return None
        pair_of = np.empty(order.size, dtype=int)
        pair_of[order] = np.cumsum(first) - 1
        return (rows[first], cols[first]), pair_of[star_of]
    return (node_rows[stars], node_cols[stars]), star_of


def _stamp_frame(rows: np.ndarray, cols: np.ndarray):
    """An empty stack of stamps, the stamps' centre pixels and their sub-pixel sampling.

    Stamp pixel k (-6..6) samples the padded table at TABLE_CENTRE + 1 + 9 (k - frac): a
    stride-9 decimation starting at offset base (0-9), interpolated linearly between the
    decimations at offsets base and base + 1 (pre-computed in ``PRFModel._decimated``).
    """
    rc = np.rint(rows).astype(int)
    cc = np.rint(cols).astype(int)
    sy = TABLE_CENTRE + 1 - OVERSAMPLE * HALF_WIDTH - OVERSAMPLE * (rows - rc)
    sx = TABLE_CENTRE + 1 - OVERSAMPLE * HALF_WIDTH - OVERSAMPLE * (cols - cc)
    by = np.clip(np.floor(sy).astype(int), 0, OVERSAMPLE)
    bx = np.clip(np.floor(sx).astype(int), 0, OVERSAMPLE)
    wy = np.clip(sy - by, 0.0, 1.0)
    wx = np.clip(sx - bx, 0.0, 1.0)
    out = np.zeros((rows.size, 2 * HALF_WIDTH + 1, 2 * HALF_WIDTH + 1), dtype=np.float32)
    return out, rc, cc, (by, bx, wy, wx)


def _accumulate(out: np.ndarray, tables: np.ndarray, which, weight: np.ndarray, sub) -> None:
    """Add ``weight`` times the sub-pixel interpolation of table ``which`` to the stamps.

    In blocks of :data:`ACCUMULATE_CHUNK` stamps: each block's arrays stay in the cache.
    """
    by, bx, wy, wx = sub
    which = np.broadcast_to(which, by.shape)
    weight = np.broadcast_to(weight, by.shape)
    for start in range(0, by.size, ACCUMULATE_CHUNK):
        block = slice(start, start + ACCUMULATE_CHUNK)
        _accumulate_block(
            out[block],
            tables,
            which[block],
            weight[block],
            (by[block], bx[block], wy[block], wx[block]),
        )


def _accumulate_block(
    out: np.ndarray, tables: np.ndarray, which: np.ndarray, weight: np.ndarray, sub
) -> None:
    """:func:`_accumulate` of one block of stamps (``out`` is written in place)."""
    by, bx, wy, wx = sub
    for dy, fy in ((0, 1 - wy), (1, wy)):
        for dx, fx in ((0, 1 - wx), (1, wx)):
            w = (weight * fy * fx).astype(np.float32)
            used = np.flatnonzero(w)
            if used.size == w.size:
                out += w[:, None, None] * tables[which, by + dy, bx + dx]
            elif used.size:
                # Stamps on the tables' samples (e.g. at interpolation knots) need fewer terms.
                out[used] += w[used, None, None] * tables[which[used], by[used] + dy, bx[used] + dx]


def _normalised(out: np.ndarray) -> np.ndarray:
    """The stamps in double precision, each normalised to unit sum."""
    out = out.astype(np.float64)
    out /= out.sum(axis=(1, 2), keepdims=True)
    return out


def edge_taper() -> np.ndarray:
    """Circular window bringing a table smoothly to zero from ``TAPER_START`` to the edge.

    The tabulated footprint ends at 6.5 px where the SPOC PRFs still hold a faint, flat
    pedestal; cut there, it draws a square around bright stars.
    """
    d = (np.arange(TABLE_SIZE) - TABLE_CENTRE) / OVERSAMPLE
    r = np.hypot(d[:, None], d[None, :])
    edge = HALF_WIDTH + 0.5
    x = np.clip((r - TAPER_START) / (edge - TAPER_START), 0.0, 1.0)
    return 0.5 * (1 + np.cos(np.pi * x))
