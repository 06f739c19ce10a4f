r"""Sky background of a small region with bright stars: stars and sky fitted together.

A TESScut cutout or a target pixel file of 5x5 to 20x20 pixels around a bright star holds
no star-free sky for the mesh estimate (:mod:`tessphot.prepare.background`): the star's
wings cover every pixel. Here every frame is fitted by weighted linear least squares as

.. math::

    I(\delta) = s + \sum_j a_j P_j(\delta) + F(\delta)

with :math:`s` the sky (constant over the region, as the mesh is for regions up to about
1.5 boxes), :math:`P_j` the unit-flux PRF images of the catalogued stars on the region (the
brightest ``fit_max_stars``, fluxes :math:`a_j` free), :math:`F` the predicted light of
every other catalogued star (fixed) and :math:`\delta` a common shift of all stars from
their catalogue positions (the jitter: up to 0.5 px at a momentum dump, which moves a
bright star's core by far more than the sky's noise). The shift is followed by
Gauss-Newton passes (the derivatives of the stars' light with respect to it are two more
columns of the fit). Each pixel is weighted by :math:`1 / (\sigma^2 + (e S)^2)`:
:math:`\sigma` its uncertainty, :math:`S` the modelled starlight and :math:`e` =
``fit_prf_error``, because the model of a star's core is good to a few per cent only; the
wings and the sky pixels carry the sky. Saturated pixels and their bleed columns are left
out, and pixels more than ``source_sigma`` off the fit (cosmic rays, unknown stars) are
clipped over ``iterations`` passes. The sky's uncertainty is the fit's (its covariance,
scaled by the reduced chi-square when that exceeds one); the caller smooths it in time like
a mesh of one box.

With fewer usable pixels than ``fit_pixels_per_parameter`` per parameter the jitter terms
are dropped, then the faintest fitted stars (their catalogue light is subtracted instead);
a frame with too few pixels even for the sky alone gets no estimate (NaN).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np

from tessphot.config.prepare import BackgroundSettings
from tessphot.io.errors import FileProblem
from tessphot.prepare.background import (
    FrameBackground,
    MeshGeometry,
    saturation_mask,
    sky_pixels_per_box,
)
from tessphot.prf.boxes import prf_images

#: Step of the central differences that give a star image's position derivatives [px].
SHIFT_STEP_PX = 0.1
#: A star gets a free flux when its centre is on the region or at most this far off it [px].
FREE_STAR_MARGIN_PX = 0.5
#: Gauss-Newton passes that follow the common shift of the free stars (the jitter) ...
SHIFT_PASSES = 4
#: ... until its correction is below this [px] ...
SHIFT_TOLERANCE_PX = 0.002
#: ... within this of the catalogue positions [px].
MAX_SHIFT_PX = 1.0
#: Names of the background methods as recorded in the outputs.
MESH, FIT = "mesh", "fit"


class BackgroundError(FileProblem):
    """The sky background of a region cannot be estimated (too few usable pixels)."""


@dataclass(frozen=True)
class StarModel:
    """The catalogued stars of a region as the fit sees them.

    Attributes
    ----------
    prf : tessphot.prf.models.PRFModel
        The PRF.
    rows, cols : numpy.ndarray, shape (n,)
        Science-area positions of the catalogued stars near the region [px]: first the
        ``n_free`` stars whose fluxes are fitted (brightest first), then the others.
    flux : numpy.ndarray, shape (n,)
        Their catalogue fluxes [e-/s].
    n_free : int
        Number of stars with a free flux.
    shape, origin : tuple of int
        The region: (rows, columns) and the science (row, column) of its pixel [0, 0].
    jitter : bool
        Whether the fit follows a common shift of the stars (the jitter terms).
    """

    prf: object
    rows: np.ndarray
    cols: np.ndarray
    flux: np.ndarray
    n_free: int
    shape: tuple[int, int]
    origin: tuple[int, int]
    jitter: bool = True

    @property
    def n_parameters(self) -> int:
        """Free parameters of the fit: sky, the stars' fluxes and the jitter terms."""
        return 1 + self.n_free + (2 if self.jitter else 0)

    def images(self, shifts: np.ndarray) -> np.ndarray:
        """Unit-flux images of every star, shifted, shape (n_shifts, n, ny * nx).

        ``shifts`` is (n_shifts, 2): (row, column) shifts [px] of all stars together.
        """
        shifts = np.atleast_2d(shifts)
        return prf_images(
            self.prf,
            self.rows[None, :] + shifts[:, :1],
            self.cols[None, :] + shifts[:, 1:],
            self.rows,
            self.cols,
            self.origin,
            self.shape,
        )

    def starlight(self) -> np.ndarray:
        """Predicted light of every star at its catalogue flux [e-/s]."""
        return (self.flux @ self.images(np.zeros(2))[0]).reshape(self.shape)

    def reduced(self, n_usable: int, per_parameter: float) -> StarModel | None:
        """The model with the parameters ``n_usable`` pixels can carry; None for none.

        The jitter terms go first, then the faintest free stars (their catalogue light is
        subtracted instead).
        """
        if n_usable < per_parameter:
            return None
        model = self
        while n_usable < per_parameter * model.n_parameters:
            if model.jitter:
                model = dataclasses.replace(model, jitter=False)
            else:
                model = dataclasses.replace(model, n_free=model.n_free - 1)
        return model


def star_model(
    prf,
    rows: np.ndarray,
    cols: np.ndarray,
    flux: np.ndarray,
    shape: tuple[int, int],
    origin: tuple[int, int],
    max_free: int,
) -> StarModel:
    """The stars of a region for the fit.

    Parameters
    ----------
    prf : tessphot.prf.models.PRFModel
        The PRF.
    rows, cols : numpy.ndarray
        Science-area positions of the catalogued stars near the region [px].
    flux : numpy.ndarray
        Their catalogue fluxes [e-/s].
    shape, origin : tuple of int
        The region: (rows, columns) and the science (row, column) of its pixel [0, 0].
    max_free : int
        Most stars with a free flux (the brightest on the region).

    Returns
    -------
    StarModel
        Without a star on the region, no free star and no jitter terms.
    """
    rows, cols, flux = (np.asarray(a, dtype=float) for a in (rows, cols, flux))
    r, c = rows - origin[0], cols - origin[1]
    m = FREE_STAR_MARGIN_PX
    on = (r > -0.5 - m) & (r < shape[0] - 0.5 + m) & (c > -0.5 - m) & (c < shape[1] - 0.5 + m)
    free = [i for i in np.argsort(-flux, kind="stable") if on[i]][:max_free]
    order = np.array(free + [i for i in range(rows.size) if i not in free], dtype=int)
    return StarModel(
        prf=prf,
        rows=rows[order],
        cols=cols[order],
        flux=flux[order],
        n_free=len(free),
        shape=(int(shape[0]), int(shape[1])),
        origin=(int(origin[0]), int(origin[1])),
        jitter=bool(free),
    )


def _solve(design: np.ndarray, data: np.ndarray, sigma: np.ndarray):
    """Weighted least squares: coefficients, their covariance and the reduced chi-square."""
    a = design / sigma[:, None]
    b = data / sigma
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    cov = np.linalg.pinv(a.T @ a)
    dof = max(b.size - design.shape[1], 1)
    chi2 = float(np.sum((b - a @ coef) ** 2) / dof)
    return coef, cov, chi2


@dataclass
class _FitState:
    """What the passes of the fit of one frame carry over."""

    amplitudes: np.ndarray
    shift: np.ndarray
    use: np.ndarray
    coef: np.ndarray | None = None
    cov: np.ndarray | None = None
    chi2: float = math.nan


def _design(model: StarModel, state: _FitState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fit's design matrix (parameters x pixels), the fixed and all the stars' light.

    The jitter columns are the derivatives of all the stars' light (the free ones at their
    current fluxes) with respect to a common shift: their coefficients correct the shift.
    """
    k = model.n_free
    h = SHIFT_STEP_PX
    steps = np.array([[0, 0], [h, 0], [-h, 0], [0, h], [0, -h]], dtype=float)
    images = model.images(state.shift + (steps if model.jitter else steps[:1]))
    fixed = np.einsum("j,tjp->tp", model.flux[k:], images[:, k:])
    light = fixed + np.einsum("j,tjp->tp", state.amplitudes, images[:, :k])
    columns = [np.ones((1, light.shape[1])), images[0, :k]]
    if model.jitter:
        columns.append((light[1:2] - light[2:3]) / (2 * h))
        columns.append((light[3:4] - light[4:5]) / (2 * h))
    return np.concatenate(columns, axis=0), fixed[0], light[0]


def _fit_pass(
    model: StarModel, state: _FitState, image: np.ndarray, variance: np.ndarray, error: float
) -> tuple[np.ndarray, np.ndarray]:
    """One weighted fit, following the common shift (Gauss-Newton).

    Returns the residual image and the pixels' uncertainties.
    """
    k = model.n_free
    for _ in range(SHIFT_PASSES if model.jitter else 1):
        design, fixed, light = _design(model, state)
        sigma = np.sqrt(variance + (error * light) ** 2)
        data = image - fixed
        use = state.use
        state.coef, state.cov, state.chi2 = _solve(design[:, use].T, data[use], sigma[use])
        fitted = state.coef[1 : 1 + k]
        state.amplitudes = np.where(fitted > 0, fitted, state.amplitudes)
        if not model.jitter:
            break
        step = state.coef[1 + k : 3 + k]
        state.shift = np.clip(state.shift + step, -MAX_SHIFT_PX, MAX_SHIFT_PX)
        if np.max(np.abs(step)) < SHIFT_TOLERANCE_PX:
            break
    return data - state.coef @ design, sigma


def fit_background(
    image: np.ndarray,
    uncertainty: np.ndarray,
    stars: StarModel,
    settings: BackgroundSettings,
    exclude: np.ndarray | None = None,
) -> FrameBackground:
    """The sky of one frame of a small region, fitted jointly with its stars.

    Parameters
    ----------
    image : numpy.ndarray
        Calibrated image, not background-subtracted [e-/s].
    uncertainty : numpy.ndarray
        Its 1-sigma uncertainty [e-/s].
    stars : StarModel
        The catalogued stars (:func:`star_model`).
    settings : BackgroundSettings
        Tunables (``fit_*``, ``source_sigma``, ``iterations`` and the saturation mask's).
    exclude : numpy.ndarray of bool, optional
        Pixels to leave out.

    Returns
    -------
    FrameBackground
        A constant sky on the mesh of the region (NaN when the frame has too few usable
        pixels); every pixel left out of the fit flagged as not used.
    """
    geometry = MeshGeometry(image.shape, settings.box_size, settings.binning)
    usable = np.isfinite(image) & np.isfinite(uncertainty) & (uncertainty > 0)
    usable &= ~saturation_mask(image, settings)
    if exclude is not None:
        usable &= ~exclude
    model = stars.reduced(int(usable.sum()), settings.fit_pixels_per_parameter)
    if model is None:
        return _constant(geometry, math.nan, math.nan, ~usable)
    data = np.nan_to_num(image).ravel()
    variance = np.nan_to_num(uncertainty).ravel() ** 2
    state = _FitState(model.flux[: model.n_free].copy(), np.zeros(2), usable.ravel().copy())
    minimum = settings.fit_pixels_per_parameter * model.n_parameters
    for iteration in range(settings.iterations):
        residual, sigma = _fit_pass(model, state, data, variance, settings.fit_prf_error)
        outliers = state.use & (np.abs(residual) > settings.source_sigma * sigma)
        last = iteration == settings.iterations - 1
        if last or not outliers.any() or state.use.sum() - outliers.sum() < minimum:
            break
        state.use &= ~outliers
    error = math.sqrt(max(float(state.cov[0, 0]), 0.0) * max(state.chi2, 1.0))
    return _constant(geometry, float(state.coef[0]), error, ~state.use.reshape(image.shape))


def _constant(
    geometry: MeshGeometry, sky: float, error: float, not_used: np.ndarray
) -> FrameBackground:
    """A constant sky as a frame's background estimate."""
    return FrameBackground(
        mesh=np.full(geometry.mesh_shape, sky),
        mesh_err=np.full(geometry.mesh_shape, error),
        not_used=not_used,
        model=np.full(geometry.shape, sky),
        anomalous=np.zeros(geometry.shape, dtype=bool),
    )


def choose_method(
    settings: BackgroundSettings,
    image: np.ndarray,
    uncertainty: np.ndarray,
    starlight: np.ndarray | None,
) -> str:
    """The background method of a region (:data:`MESH` or :data:`FIT`).

    ``settings.method`` unless it is ``"auto"``; then the fit when the stars are known
    (``starlight`` given) and the region is at most ``fit_region_size`` px on both sides,
    or the mesh would have no box with enough sky pixels in the first frame (``image``).
    """
    if settings.method != "auto":
        return settings.method
    if starlight is None:
        return MESH
    if max(image.shape) <= settings.fit_region_size:
        return FIT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        counts, needed = sky_pixels_per_box(image, uncertainty, starlight, settings)
    return MESH if np.any(counts > needed) else FIT


def usable_pixels(image: np.ndarray, settings: BackgroundSettings) -> int:
    """Pixels of a frame the fit can use (finite, not saturated nor in a bleed column)."""
    return int(np.sum(np.isfinite(image) & ~saturation_mask(image, settings)))
