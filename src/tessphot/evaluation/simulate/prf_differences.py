"""Simulated differences of the stars' PRF from the model that the pipeline fits.

Real PRFs are not the lab models (issue 18): they differ by a few percent in width and
shape over the CCD, change with the focus over each orbit, and have wings and a halo the
models lack. With ``[simulate.prf] enabled`` (off by default; off, nothing here is drawn or
used and the simulation is exactly the one without it) every star is rendered with the
model (SPOC or analytic) changed so:

* **Width and shape over the CCD.** About the star, the PRF is sampled at offsets mapped by
  a 2x2 matrix ``A``, ``PRF'(d) = PRF(A^-1 d) / |det A|``: the flux is kept and the second
  moments ``M`` (row, column) become ``A M A^T``. ``A = s f (I + e Q)`` with
  ``Q = [[-cos 2p, sin 2p], [sin 2p, cos 2p]]`` stretches the PRF by ``s f (1 + e)`` along
  the direction ``p`` (from the column axis towards the row axis) and by ``s f (1 - e)``
  across it. Over the CCD, ``s = 1 + w (1 + S P_s)``, ``e = E (1 + S P_e)`` and
  ``p = p0 + T P_p``, with ``w``, ``E``, ``p0`` the settings ``width_change``,
  ``ellipticity``, ``angle``; ``S`` and ``T`` are ``FIELD_SPREAD`` and ``ANGLE_SPREAD`` of
  :mod:`~tessphot.evaluation.simulate.prf_field` (0.5 and 45 deg);
  each ``P`` a quadratic polynomial of the normalised CCD position ``u, v`` (-1 to 1;
  terms ``u, v, u^2 - 1/3, u v, v^2 - 1/3``, zero mean over the CCD) with coefficients
  drawn once per seed, scaled to an absolute value of at most 1 over the CCD.
* **Focus over each orbit.** ``f(t) = 1 + F exp(-(t - t0) / tau)`` at mid-exposure, ``t0``
  the start of the cadence's orbit, ``F`` and ``tau`` the settings ``focus_change`` and
  ``focus_time``: the PRF is broader (``F > 0``) after each orbit's start and settles; the
  curve restarts at the orbit gap.
* **Halo.** Stars brighter than ``halo_tmag`` put ``halo_fraction`` of their light into a
  broad halo (:mod:`tessphot.evaluation.simulate.prf_halo`); the rest goes into the PRF.

**Rendering.** The transformed tables are made at nodes at most :data:`NODE_SPACING` px
apart (the model's own nodes and nodes between them, over the simulated region), by cubic
spline interpolation of the model's tables, and normalised to unit flux (the transform
itself keeps it within 1e-4 at the default amounts: what leaves the 13x13 px footprint);
between nodes they are interpolated bilinearly, as the model's are. So rendering a star
costs what it did; the tables are remade once per cadence when the focus changes (0.12 s
for the 81 nodes of a whole CCD). At a star, the rendered PRF's width follows the star's
own transform of the model within 3e-4 (its pixels within 0.4 % of the peak); a crop
renders the same PRF at a pixel as the whole CCD would. Stretched by more than ~10 %, the
wings reach the footprint's edge and are cut (at ``s = 1.1, e = 0.1`` the SPOC PRF's
moments fall 2 % short of ``A M A^T``).

The random numbers come from a stream of their own (``PRF_STREAM`` of
:mod:`~tessphot.evaluation.simulate.prf_field`): stars, signals, sky, pointing and noise
are those of the same seed without the differences, which change only the stars' PRF. The
truth keeps everything (the truth file's group ``prf_differences``,
:func:`tessphot.evaluation.simulate.truth.write_prf_differences`), and :func:`exact_prf`
rebuilds from it the PRF the stars were rendered with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

from tessphot.config.simulate import PRFDifferenceSettings, SimulationConfig
from tessphot.evaluation.simulate.cadences import Cadences
from tessphot.evaluation.simulate.prf_field import (
    CCD_SPAN,
    PRFField,
    focus_curve,
    shape_matrices,
)
from tessphot.evaluation.simulate.prf_halo import HaloProfile, render_halos
from tessphot.evaluation.simulate.stars import CATALOG_MARGIN, StarField
from tessphot.prf.effective_shape import SPLINE_ORDER, transformed_table
from tessphot.prf.models import PRFModel

#: Largest distance between the nodes of the transformed tables [px].
NODE_SPACING = 256.0


def model_nodes(base_nodes: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The nodes along one axis of the transformed tables for positions from ``lo`` to ``hi``.

    The model's nodes (the CCD's ends for a one-node model) with nodes added between them
    at most :data:`NODE_SPACING` apart; of those, the ones spanning ``lo`` to ``hi``.
    """
    base = np.asarray(base_nodes, dtype=float)
    if base.size == 1:
        base = np.array(CCD_SPAN)
    parts = [
        np.linspace(a, b, int(np.ceil((b - a) / NODE_SPACING)) + 1)[:-1]
        for a, b in zip(base[:-1], base[1:], strict=True)
    ]
    nodes = np.concatenate([*parts, base[-1:]])
    first = max(int(np.searchsorted(nodes, lo, side="right")) - 1, 0)
    last = min(int(np.searchsorted(nodes, hi, side="left")), nodes.size - 1)
    return nodes[first : last + 1]


class TransformedPRF:
    """The model's tables transformed by the field at nodes over a region, for any focus.

    Parameters
    ----------
    base : PRFModel
        The model (SPOC or analytic).
    prf_field : PRFField
        The width and shape over the CCD.
    region : tuple of float
        ``(row_min, row_max, col_min, col_max)`` of the positions to render.
    """

    def __init__(self, base: PRFModel, prf_field: PRFField, region: tuple[float, ...]):
        self.base_name = base.name
        self.node_rows = model_nodes(base.node_rows, region[0], region[1])
        self.node_cols = model_nodes(base.node_cols, region[2], region[3])
        rows, cols = (a.ravel() for a in np.meshgrid(self.node_rows, self.node_cols, indexing="ij"))
        self.matrices = prf_field.matrices(rows, cols)
        self.coefficients = np.stack(
            [
                ndimage.spline_filter(table, order=SPLINE_ORDER, mode="grid-constant")
                for table in base.tables_at(rows, cols)
            ]
        )

    def tables(self, focus: float = 1.0) -> np.ndarray:
        """The transformed tables (not normalised) at a focus factor."""
        return np.stack(
            [
                transformed_table(c, focus * m)
                for c, m in zip(self.coefficients, self.matrices, strict=True)
            ]
        )

    def model(self, focus: float = 1.0) -> PRFModel:
        """The PRF the stars are rendered with at a focus factor (unit flux, as any model)."""
        return PRFModel(
            self.tables(focus),
            self.node_rows,
            self.node_cols,
            name=f"{self.base_name} with simulated differences (focus {focus:.5f})",
            short_name="simulated PRF differences",
            taper=False,
        )


@dataclass
class AppliedPRFDifferences:
    """The PRF differences of one simulation, as rendered and as the truth keeps them.

    Attributes
    ----------
    settings : PRFDifferenceSettings
        The settings.
    prf_field : PRFField
        The width and shape over the CCD.
    width, ellipticity, angle : numpy.ndarray
        Per star, at its reference position (clamped to the CCD): ``s``, ``e``, ``p`` [deg].
    halo_fraction : numpy.ndarray
        Per star, the fraction of its light in the halo (0 for faint stars).
    focus : numpy.ndarray
        Per cadence, the focus factor ``f``.
    transformed : TransformedPRF or None
        The transformed tables (None when neither the field nor the focus changes the PRF).
    halo : HaloProfile or None
        The halo (None without one).
    halo_kernels : numpy.ndarray or None
        The halo's kernels (:meth:`HaloProfile.kernels`).
    """

    settings: PRFDifferenceSettings
    prf_field: PRFField
    width: np.ndarray
    ellipticity: np.ndarray
    angle: np.ndarray
    halo_fraction: np.ndarray
    focus: np.ndarray
    transformed: TransformedPRF | None
    halo: HaloProfile | None
    halo_kernels: np.ndarray | None = None
    #: The model of the last focus factor rendered.
    _cached: tuple[float, PRFModel] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def build(
        cls, config: SimulationConfig, base: PRFModel, stars: StarField, cadences: Cadences
    ) -> AppliedPRFDifferences:
        """The differences of a simulation (``config.prf``), drawn from their own stream.

        Parameters
        ----------
        config : SimulationConfig
            The simulation's settings (``prf``, the seed, the region).
        base : PRFModel
            The PRF model.
        stars : StarField
            The stars (reference positions, magnitudes).
        cadences : Cadences
            The cadences (times, orbits).

        Returns
        -------
        AppliedPRFDifferences
        """
        settings = config.prf
        prf_field = PRFField.draw(settings, config.seed)
        width, ellipticity, angle = prf_field.evaluate(stars.row, stars.col)
        tmid = 0.5 * (cadences.tstart + cadences.tstop)
        focus = focus_curve(
            tmid, cadences.orbits, change=settings.focus_change, time=settings.focus_time
        )
        transformed = None
        if prf_field.changes_shape or settings.focus_change != 0:
            r0, r1, c0, c1 = config.region()
            m = CATALOG_MARGIN
            transformed = TransformedPRF(base, prf_field, (r0 - m, r1 + m, c0 - m, c1 + m))
        halo = None
        if settings.halo_fraction > 0:
            halo = HaloProfile(settings.halo_radius, settings.halo_index)
        bright = (stars.tmag < settings.halo_tmag) & (halo is not None)
        return cls(
            settings,
            prf_field,
            width,
            ellipticity,
            angle,
            np.where(bright, settings.halo_fraction, 0.0),
            focus,
            transformed,
            halo,
            halo.kernels() if halo is not None else None,
        )

    @property
    def matrices(self) -> np.ndarray:
        """Per star, the matrix ``A`` (star, 2, 2) without the focus change."""
        return shape_matrices(self.width, self.ellipticity, self.angle)

    def model(self, k: int, base: PRFModel) -> PRFModel:
        """The PRF of cadence ``k`` (``base`` when the PRF's shape is not changed)."""
        if self.transformed is None:
            return base
        focus = float(self.focus[k])
        if self._cached is None or self._cached[0] != focus:
            self._cached = (focus, self.transformed.model(focus))
        return self._cached[1]

    def render(
        self,
        k: int,
        base: PRFModel,
        rows: np.ndarray,
        cols: np.ndarray,
        fluxes: np.ndarray,
        shape: tuple[int, int],
        origin: tuple[int, int],
        *,
        node_rows: np.ndarray,
        node_cols: np.ndarray,
    ) -> np.ndarray:
        """Image of the stars of cadence ``k`` on the region, with the differences.

        Parameters
        ----------
        k : int
            Cadence index.
        base : PRFModel
            The PRF model.
        rows, cols, fluxes : numpy.ndarray
            The stars' positions [science-area px] and total fluxes (one per star).
        shape, origin, node_rows, node_cols
            As :meth:`tessphot.prf.models.PRFModel.render` (``node_*``: the stars'
            reference positions, choosing the PRF's shape).

        Returns
        -------
        numpy.ndarray
            The image; light falling outside the region is lost.
        """
        core = fluxes * (1 - self.halo_fraction)
        image = self.model(k, base).render(
            rows, cols, core, shape, origin, node_rows=node_rows, node_cols=node_cols
        )
        if self.halo is not None:
            bright = np.flatnonzero(self.halo_fraction)
            image += render_halos(
                self.halo,
                self.halo_kernels,
                rows[bright],
                cols[bright],
                fluxes[bright] * self.halo_fraction[bright],
                shape,
                origin=origin,
            )
        return image

    def description(self) -> dict:
        """The field, the halo and the nodes, as plain values (for the truth)."""
        return {
            "field": asdict(self.prf_field),
            "halo": None if self.halo is None else asdict(self.halo),
            "node_rows": None if self.transformed is None else self.transformed.node_rows.tolist(),
            "node_cols": None if self.transformed is None else self.transformed.node_cols.tolist(),
        }


def prf_cards(settings: PRFDifferenceSettings) -> dict:
    """The FITS header cards of the PRF differences (none when they are off)."""
    if not settings.enabled:
        return {}
    return {
        "SIMPRFD": (True, "PRF differs from the model (simulated)"),
        "SIMPWID": (settings.width_change, "mean relative PRF width change"),
        "SIMPELL": (settings.ellipticity, "mean PRF ellipticity added"),
        "SIMPANG": (settings.angle, "[deg] mean direction of the PRF stretch"),
        "SIMPFOC": (settings.focus_change, "PRF width change at orbit starts"),
        "SIMPFTAU": (settings.focus_time, "[d] e-folding time of the focus change"),
        "SIMPHALO": (settings.halo_fraction, "fraction of bright stars' light in halo"),
        "SIMPHTMG": (settings.halo_tmag, "[mag] stars brighter get the halo"),
        "SIMPHRAD": (settings.halo_radius, "[px] outer radius of the halo"),
        "SIMPHIDX": (settings.halo_index, "power-law index of the halo"),
    }


def exact_prf(
    base: PRFModel,
    differences: dict,
    region: tuple[float, float, float, float],
    *,
    focus: float = 1.0,
) -> PRFModel:
    """The PRF (without its halo) that a simulation rendered its stars with, from its truth.

    Parameters
    ----------
    base : PRFModel
        The simulation's PRF model (``prf_model`` of the truth).
    differences : dict
        The truth's PRF differences
        (:func:`tessphot.evaluation.simulate.truth.read_prf_differences`).
    region : tuple of float
        ``(row_min, row_max, col_min, col_max)`` of the positions to render.
    focus : float
        Focus factor, e.g. a cadence's from ``differences["focus"]`` (1: none).

    Returns
    -------
    PRFModel
        The transformed model; ``base`` when the differences do not change its shape.
    """
    prf_field = PRFField(**differences["field"])
    if not prf_field.changes_shape and focus == 1.0:
        return base
    return TransformedPRF(base, prf_field, region).model(focus)
