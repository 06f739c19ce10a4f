"""The effective PRF's slow change with time: its width scaled cadence by cadence (focus).

The focus of TESS's cameras changes over each orbit (issue 18): the PRF is a little broader
or narrower for a day or so after each orbit's start. The prepare stage measures it as a
scale ``s(t)`` of the effective PRF's width (:mod:`tessphot.prepare.focus`): the PRF of
cadence ``t`` is the static effective PRF magnified by ``s(t)`` about the star,
``P_s(d) = P(d / s) / s^2`` (:func:`scaled_tables`; the flux kept).

:class:`FocusedPRF` renders it. It is the static effective PRF (its :attr:`tables` and every
method without a cadence are that PRF's) with the tables magnified at a few *anchor* scales,
:data:`ANCHOR_STEP` apart over the range of ``s(t)``; a stamp of cadence ``t`` is interpolated
linearly between the two anchors around ``s(t)`` (:meth:`FocusedPRF.cadence_stamps`), on the
same sub-pixel and node interpolation as any model's stamp, so the knot tables and every
consumer of :func:`tessphot.prf.boxes.prf_images` keep working: they pass the cadences of
their positions (``cadences=``; the aperture's fractions interpolate between anchors'
tabulations, :func:`tessphot.photometry.scene.aperture_fractions`).

The tables are interpolated linearly in ``s`` between anchors 0.5 % apart: the error is
``ANCHOR_STEP^2 / 8`` times the PRF's second derivative in ``s`` (below 1e-5 of the peak).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from tessphot.prf.effective import EffectivePRF
from tessphot.prf.effective_shape import N_SHAPE, distorted
from tessphot.prf.models import (
    HALF_WIDTH,
    PRFModel,
    _accumulate,
    _normalised,
    _shared_shapes,
    _stamp_frame,
)

#: Largest step in scale between two anchor tables of a :class:`FocusedPRF` (relative).
ANCHOR_STEP = 0.005
#: Sets of positions whose anchor shapes a :class:`FocusedPRF` keeps (a target's scene).
SHAPE_CACHE = 8
#: The scale's contribution to the distortion ``E`` of :func:`distorted` (``E = (s - 1) I``).
ISOTROPIC = np.array([1.0, 0.0, 0.0, 1.0])


def scaled_tables(tables: np.ndarray, scale: float) -> np.ndarray:
    """Tables magnified by ``scale`` about the star: ``T(d / s) / s^2`` (not normalised).

    Parameters
    ----------
    tables : ndarray, shape (n_nodes, TABLE_SIZE, TABLE_SIZE)
    scale : float
        The width's scale (1: unchanged).

    Returns
    -------
    ndarray, shape (n_nodes, TABLE_SIZE, TABLE_SIZE)
    """
    if scale == 1.0:
        return np.array(tables, dtype=np.float64)
    e = np.broadcast_to((scale - 1.0) * ISOTROPIC, (tables.shape[0], N_SHAPE))
    return distorted(tables, e)


def scaled_model(prf: PRFModel, scale: float) -> PRFModel:
    """A PRF magnified by ``scale`` about the star, on the same nodes (unit flux)."""
    return PRFModel(
        scaled_tables(prf.tables, scale),
        prf.node_rows,
        prf.node_cols,
        name=f"{prf.name} scaled by {scale:.5f}",
        short_name=prf.short_name,
        taper=False,
    )


def anchor_scales(scale: np.ndarray) -> np.ndarray:
    """The anchors' scales: at most :data:`ANCHOR_STEP` apart over the range of ``scale``.

    At least two (the range's ends); the finite values of ``scale`` and 1 are within them.
    """
    values = np.asarray(scale, dtype=float)
    values = np.append(values[np.isfinite(values)], 1.0)
    lo, hi = float(values.min()), float(values.max())
    n = max(int(np.ceil((hi - lo) / ANCHOR_STEP - 1e-9)), 1) + 1
    return np.linspace(lo, hi if hi > lo else lo + ANCHOR_STEP, n)


class FocusedPRF(EffectivePRF):
    """An effective PRF whose width changes cadence by cadence (see the module notes).

    Parameters
    ----------
    static : EffectivePRF
        The static effective PRF (scale 1).
    scale : array_like, shape (n_cadences,)
        The width's scale of every cadence (non-finite: 1).
    """

    def __init__(self, static: EffectivePRF, scale) -> None:
        super().__init__(
            static.tables,
            static.node_rows,
            static.node_cols,
            static.name,
            static.short_name,
            base_name=static.base_name,
            base_analytic=static.base_analytic,
        )
        self.static = static
        scale = np.asarray(scale, dtype=float)
        self.scale = np.where(np.isfinite(scale), scale, 1.0)
        self.anchors = anchor_scales(self.scale)
        self.anchor_models = [scaled_model(static, s) for s in self.anchors]
        n_nodes = self.tables.shape[0]
        #: Every anchor's decimated tables, anchor by anchor: index ``k * n_nodes + node``.
        self._anchor_decimated = np.concatenate([m._decimated for m in self.anchor_models])
        self._n_nodes = n_nodes
        #: The anchors' shapes at the positions of recent calls (:meth:`_shape_tables`).
        self._shapes: OrderedDict[tuple[bytes, bytes], tuple[np.ndarray, np.ndarray]] = (
            OrderedDict()
        )

    @property
    def amplitude(self) -> float:
        """Largest relative change of the width from the static PRF's."""
        return float(np.max(np.abs(self.scale - 1.0)))

    def anchor_weights(self, cadences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The lower anchor of each cadence's scale and the upper one's weight (0-1)."""
        s = self.scale[np.asarray(cadences, dtype=int)]
        x = (s - self.anchors[0]) / (self.anchors[1] - self.anchors[0])
        k = np.clip(np.floor(x).astype(int), 0, self.anchors.size - 2)
        return k, np.clip(x - k, 0.0, 1.0)

    def model_at(self, cadence: int) -> PRFModel:
        """The PRF of one cadence as a plain model (its tables interpolated between anchors)."""
        k, a = (v[0] for v in self.anchor_weights(np.array([cadence])))
        tables = (1 - a) * self.anchor_models[k].tables + a * self.anchor_models[k + 1].tables
        return PRFModel(
            tables, self.node_rows, self.node_cols, self.name, self.short_name, taper=False
        )

    def _shape_tables(self, rows: np.ndarray, cols: np.ndarray, used: np.ndarray) -> np.ndarray:
        """The anchors' shapes at positions (:meth:`PRFModel.shape_tables`), anchor by anchor.

        Index ``k * n + shape``; only the anchors ``used`` are filled. Kept for the next
        call with the same positions (a target's stars are rendered many times over).
        """
        key = (rows.tobytes(), cols.tobytes())
        entry = self._shapes.get(key)
        if entry is None:
            if len(self._shapes) >= SHAPE_CACHE:
                self._shapes.popitem(last=False)  # the oldest
            tables = np.zeros((self.anchors.size * rows.size, *self._decimated.shape[1:]), "f4")
            entry = self._shapes[key] = (tables, np.zeros(self.anchors.size, dtype=bool))
        tables, filled = entry
        for j in np.flatnonzero(used & ~filled):
            tables[j * rows.size : (j + 1) * rows.size] = self.anchor_models[j].shape_tables(
                rows, cols
            )
            filled[j] = True
        return tables

    def cadence_stamps(
        self,
        cadences: np.ndarray,
        s_index: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        node_rows: np.ndarray,
        node_cols: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """PRF images of stars at given positions and cadences.

        Parameters
        ----------
        cadences : ndarray of int, shape (n,)
            The cadence of each stamp (index into :attr:`scale`).
        s_index : ndarray of int, shape (n,)
            The star of each stamp (index into ``node_rows``, ``node_cols``).
        rows, cols : ndarray, shape (n,)
            The stamps' positions (science-area pixels).
        node_rows, node_cols : ndarray, shape (n_stars,)
            Positions choosing each star's PRF shape.

        Returns
        -------
        stamps, row0, col0
            As :meth:`PRFModel.stamps`.
        """
        k, a = self.anchor_weights(cadences)
        out, rc, cc, sub = _stamp_frame(rows, cols)
        shapes = _shared_shapes(self, node_rows, node_cols, s_index)
        if shapes is not None:
            (shape_rows, shape_cols), which = shapes
            n_shapes = shape_rows.size
            used = np.zeros(self.anchors.size, dtype=bool)
            used[k[a < 1]] = True
            used[k[a > 0] + 1] = True
            tables = self._shape_tables(shape_rows, shape_cols, used)
            _accumulate(out, tables, k * n_shapes + which, 1.0 - a, sub)
            _accumulate(out, tables, (k + 1) * n_shapes + which, a, sub)
        else:
            nodes, weights = self._node_weights(node_rows[s_index], node_cols[s_index])
            for node, weight in zip(nodes, weights, strict=True):
                if np.any(weight):
                    _accumulate(
                        out, self._anchor_decimated, k * self._n_nodes + node, weight * (1 - a), sub
                    )
                    _accumulate(
                        out, self._anchor_decimated, (k + 1) * self._n_nodes + node, weight * a, sub
                    )
        return _normalised(out), rc - HALF_WIDTH, cc - HALF_WIDTH
