"""The correction of a PRF model's tables: a regularised linear least-squares problem.

The stars' pixels are linear in the tables: a pixel of star ``s`` is
``f_s / S_s sum_n w_n sum_k b_k X_n[i_k, j_k]`` (the node weights ``w_n`` and the bilinear
weights ``b_k`` of the four table samples around the pixel's offset, exactly as
:class:`tessphot.prf.models.PRFModel` renders; ``S_s`` the sum of the star's 13x13 stamp,
which rendering divides by). With ``X_n = T_n + C_n`` (the tables and a correction), the
residuals of the stars' fits are linear in the corrections.

The correction varies smoothly over the CCD: at node ``n`` it is
``C_n = sum_k t_k(n) (sum_j e_kj S_nj + F_k)``, a polynomial in the node's position of degree
``degree`` (:func:`position_terms`; 0: the same everywhere) interpolated between the nodes as
the tables are. ``S_nj`` are the node's tables of a small distortion of the PRF
(:func:`tessphot.prf.effective_shape.shape_tables`: four numbers per term), ``F_k`` a free
table: a tensor product of cubic B-splines with ``samples_per_pixel`` knots per pixel
(:class:`CorrectionBasis`), evaluated on the tables' 9 samples per pixel and tapered to zero
towards the footprint's edge as the tables are. The unknowns (the distortions ``e`` and the
B-splines' coefficients ``c`` of every term, and the stars' own parameters) solve, by LSQR
with the columns scaled to unit information,

``min |W (r - A x)|^2 + |c / p|^2 + s |D c / p|^2 + k m |K c|^2 + |e / q|^2``

with ``W`` the pixels' weights (their noise and the model's relative error), ``p`` the
prior width of a B-spline coefficient (about the table's value, a flux fraction per pixel:
``p`` is a fraction of the model's peak), ``D`` the second differences of the coefficients
along both axes, weighted by ``s`` relative to the damping, ``K`` three constraints per term
that keep the model's flux and the centroid of its core (:data:`CORE_RADIUS`), weighted
relative to ``m``, the median information of a coefficient (a correction must not move the
stars: positions and fluxes are fitted with it), and ``q`` the prior width of a distortion.
What the stars hardly constrain stays at the model, while well-measured unknowns follow
the data however bright the stars are. Without a free table (its prior width zero, the
default) the distortions and the stars' parameters are solved directly on their own columns
(:func:`solve_distortion`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.interpolate import BSpline
from scipy.sparse.linalg import LinearOperator, lsqr, spsolve
from threadpoolctl import threadpool_limits

from tessphot.prf.effective_shape import N_SHAPE
from tessphot.prf.effective_stars import StarBoxes
from tessphot.prf.models import HALF_WIDTH, OVERSAMPLE, TABLE_CENTRE, TABLE_SIZE, PRFModel
from tessphot.prf.spoc import CORE_RADIUS

#: Weight of the flux and centroid constraints, relative to the median information of an
#: unknown.
CONSTRAINT_WEIGHT = 1.0
#: Unknowns with less information than this fraction of the median are not counted in it.
INFORMATION_FLOOR = 1e-3
#: LSQR's tolerances and its most iterations (per pass; each pass starts from the last).
LSQR_TOLERANCE = 1e-8
LSQR_MAX_ITERATIONS = 400
#: The stamp rendering divides by (13x13 pixels).
STAMP_SIZE = 2 * HALF_WIDTH + 1


class CorrectionBasis:
    """Cubic B-splines on the tables' grid, tapered as the tables are.

    Parameters
    ----------
    samples_per_pixel : int
        Knots per pixel (1, 3 or 9).
    taper : ndarray, shape (TABLE_SIZE, TABLE_SIZE)
        The tables' taper (:func:`tessphot.prf.models._edge_taper`).
    """

    def __init__(self, samples_per_pixel: int, taper: np.ndarray) -> None:
        if OVERSAMPLE % samples_per_pixel:
            raise ValueError(f"samples_per_pixel must divide {OVERSAMPLE}")
        step = OVERSAMPLE // samples_per_pixel
        # Knots on the table's samples, one on its centre; one more beyond each end.
        first = TABLE_CENTRE % step
        centres = np.arange(first - step, TABLE_SIZE + step, step)
        x = (np.arange(TABLE_SIZE)[:, None] - centres[None, :]) / step
        element = BSpline.basis_element([-2, -1, 0, 1, 2], extrapolate=False)
        matrix = np.nan_to_num(element(x.ravel()).reshape(x.shape))
        used = matrix.any(axis=0)
        #: The B-splines on one axis (TABLE_SIZE, m).
        self.matrix = matrix[:, used]
        self.taper = taper
        self.size = self.matrix.shape[1]

    def tables(self, coefficients: np.ndarray) -> np.ndarray:
        """Corrections (n, TABLE_SIZE, TABLE_SIZE) from coefficients (n, m, m)."""
        u = self.matrix
        return self.taper * (u @ coefficients @ u.T)

    def adjoint(self, tables: np.ndarray) -> np.ndarray:
        """The transpose of :meth:`tables`: (n, TABLE_SIZE, TABLE_SIZE) to (n, m, m)."""
        u = self.matrix
        return u.T @ (self.taper * tables) @ u

    def information(self, column_sums: np.ndarray) -> np.ndarray:
        """Approximate information of each coefficient from that of each table sample."""
        u2 = self.matrix**2
        return u2.T @ (self.taper**2 * column_sums) @ u2


def stamp_sums(prf: PRFModel, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sum of each star's unnormalised 13x13 stamp (what rendering divides by)."""
    padded = np.pad(prf.tables, ((0, 0), (1, 1), (1, 1)))
    k = OVERSAMPLE * np.arange(STAMP_SIZE)
    offsets = np.arange(OVERSAMPLE + 2)
    sums = padded[:, (offsets[:, None] + k)[:, :, None, None], (offsets[:, None] + k)[None, None]]
    sums = sums.sum(axis=(2, 4))  # (nodes, 11, 11)
    rc, cc = np.rint(rows), np.rint(cols)
    sy = TABLE_CENTRE + 1 - OVERSAMPLE * HALF_WIDTH - OVERSAMPLE * (rows - rc)
    sx = TABLE_CENTRE + 1 - OVERSAMPLE * HALF_WIDTH - OVERSAMPLE * (cols - cc)
    by = np.clip(np.floor(sy).astype(int), 0, OVERSAMPLE)
    bx = np.clip(np.floor(sx).astype(int), 0, OVERSAMPLE)
    wy, wx = np.clip(sy - by, 0, 1), np.clip(sx - bx, 0, 1)
    nodes, weights = prf.node_weights(rows, cols)
    out = np.zeros(rows.size)
    for node, weight in zip(nodes, weights, strict=True):
        for dy, fy in ((0, 1 - wy), (1, wy)):
            for dx, fx in ((0, 1 - wx), (1, wx)):
                out += weight * fy * fx * sums[node, by + dy, bx + dx]
    return out


def interpolation_matrix(
    prf: PRFModel, boxes: StarBoxes, rows: np.ndarray, cols: np.ndarray, scale: np.ndarray
) -> sparse.csr_matrix:
    """The boxes' pixels as a linear function of the tables (every node's samples).

    Parameters
    ----------
    prf : PRFModel
        The grid of nodes.
    boxes : StarBoxes
    rows, cols : ndarray, shape (n,)
        The stars' positions.
    scale : ndarray, shape (n, size, size)
        Factor of each pixel (flux over stamp sum, times the pixel's weight).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n * size**2, n_nodes * TABLE_SIZE**2)
    """
    n, size = rows.size, boxes.size
    ty = TABLE_CENTRE + OVERSAMPLE * (boxes.pixel_rows() - rows[:, None])  # (n, size)
    tx = TABLE_CENTRE + OVERSAMPLE * (boxes.pixel_cols() - cols[:, None])
    iy, ix = np.floor(ty).astype(int), np.floor(tx).astype(int)
    fy, fx = ty - iy, tx - ix
    nodes, weights = prf.node_weights(rows, cols)
    n_samples = TABLE_SIZE * TABLE_SIZE
    pixel = np.arange(n * size * size).reshape(n, size, size)
    row_idx, col_idx, values = [], [], []
    for node, weight in zip(nodes, weights, strict=True):
        for dy, wy in ((0, 1 - fy), (1, fy)):
            yy = iy + dy
            for dx, wx in ((0, 1 - fx), (1, fx)):
                xx = ix + dx
                inside = ((yy >= 0) & (yy < TABLE_SIZE))[:, :, None] & (
                    (xx >= 0) & (xx < TABLE_SIZE)
                )[:, None, :]
                value = weight[:, None, None] * wy[:, :, None] * wx[:, None, :] * scale
                keep = inside & (value != 0)
                sample = (
                    node[:, None, None] * n_samples
                    + np.clip(yy, 0, TABLE_SIZE - 1)[:, :, None] * TABLE_SIZE
                    + np.clip(xx, 0, TABLE_SIZE - 1)[:, None, :]
                )
                row_idx.append(pixel[keep])
                col_idx.append(sample[keep])
                values.append(value[keep])
    n_nodes = prf.tables.shape[0]
    return sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(row_idx), np.concatenate(col_idx))),
        shape=(n * size * size, n_nodes * n_samples),
    )


def _constraint_tables() -> np.ndarray:
    """The flux and the core's first moments as weights on a table's samples, (3, T, T)."""
    d = (np.arange(TABLE_SIZE) - TABLE_CENTRE) / OVERSAMPLE
    dy, dx = np.meshgrid(d, d, indexing="ij")
    core = np.hypot(dy, dx) <= CORE_RADIUS
    return np.stack([np.ones_like(dy), dy * core, dx * core])


def _second_differences(m: np.ndarray) -> np.ndarray:
    """Second differences of coefficients (n, m, m) along both axes, concatenated."""
    return np.concatenate(
        [
            (m[:, 2:] - 2 * m[:, 1:-1] + m[:, :-2]).ravel(),
            (m[:, :, 2:] - 2 * m[:, :, 1:-1] + m[:, :, :-2]).ravel(),
        ]
    )


def _second_differences_adjoint(v: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The transpose of :func:`_second_differences`."""
    n, m, _ = shape
    split = n * (m - 2) * m
    a = v[:split].reshape(n, m - 2, m)
    b = v[split:].reshape(n, m, m - 2)
    out = np.zeros(shape)
    out[:, 2:] += a
    out[:, 1:-1] -= 2 * a
    out[:, :-2] += a
    out[:, :, 2:] += b
    out[:, :, 1:-1] -= 2 * b
    out[:, :, :-2] += b
    return out


def position_terms(node_rows: np.ndarray, node_cols: np.ndarray, degree: int) -> np.ndarray:
    """The correction's terms over the CCD at every node: ``u^i v^j``, ``i + j <= degree``.

    ``u`` and ``v`` are the nodes' rows and columns scaled to -1 .. 1 over the grid; the
    powers of each are below its number of nodes (no two terms alike at the nodes: two
    nodes on an axis give a straight line along it, one node a constant).

    Returns
    -------
    ndarray, shape (n_nodes, n_terms)
        Row-major over the grid of nodes; the constant term first.
    """

    def scaled(nodes: np.ndarray) -> np.ndarray:
        nodes = np.asarray(nodes, dtype=float)
        span = nodes[-1] - nodes[0]
        return (2 * (nodes - nodes[0]) / span - 1) if span > 0 else np.zeros(nodes.size)

    u, v = scaled(node_rows), scaled(node_cols)
    uu, vv = (a.ravel() for a in np.meshgrid(u, v, indexing="ij"))
    powers = [
        (i, d - i)
        for d in range(degree + 1)
        for i in range(d, -1, -1)
        if i < u.size and d - i < v.size
    ]
    return np.stack([uu**i * vv**j for i, j in powers], axis=1)


@dataclass(frozen=True)
class Regularisation:
    """How the correction is held towards the model (see the module's notes).

    Attributes
    ----------
    prior : float
        Prior width of a coefficient (table units): the damping towards zero.
    smoothness : float
        Weight of the second differences along the table's axes, relative to the damping.
    shape_prior : float
        Prior width of an element of the linear distortion.
    """

    prior: float
    smoothness: float
    shape_prior: float


def solve_correction(
    matrix: sparse.csr_matrix,
    residual: np.ndarray,
    basis: CorrectionBasis,
    terms: np.ndarray,
    regularisation: Regularisation,
    *,
    shapes: np.ndarray,
    stars: sparse.csr_matrix | None = None,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The correction that best explains the residuals: a distortion and tables per term.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix
        The weighted pixels as a function of the nodes' tables (:func:`interpolation_matrix`).
    residual : ndarray
        The weighted residuals of the pixels (data minus the stars' model).
    basis : CorrectionBasis
    terms : ndarray, shape (n_nodes, n_terms)
        The terms at every node (:func:`position_terms`): a node's correction is
        ``sum_k terms[n, k] (sum_j e_kj S_nj + C_k)``.
    regularisation : Regularisation
    shapes : ndarray, shape (n_nodes, N_SHAPE, TABLE_SIZE, TABLE_SIZE)
        The nodes' tables of a linear distortion
        (:func:`tessphot.prf.effective_shape.shape_tables`).
    stars : scipy.sparse.csr_matrix, optional
        The weighted pixels as a function of the stars' own parameters (their flux,
        position and sky), solved for with the correction (neither damped nor smoothed):
        alternating between the two would trade the correction's pedestal and core
        against the stars' sky and flux for many passes.
    start : ndarray, optional
        The B-splines' coefficients and the distortions to start from (a previous pass's,
        :func:`node_tables` takes the same): LSQR stops after :data:`LSQR_MAX_ITERATIONS`,
        before the least-constrained directions have settled.

    Returns
    -------
    solution : ndarray
        The B-splines' coefficients (n_terms, m, m) and the distortions (n_terms, N_SHAPE),
        flattened: :func:`node_tables` makes the nodes' corrections of them.
    steps : ndarray
        The change of the stars' parameters (empty without ``stars``).
    split : int
        Where the distortions start in ``solution``.
    """
    n_nodes, n_terms = terms.shape
    m = basis.size
    shape = (n_terms, m, m)
    n_coef = n_terms * m * m
    n_shape = n_terms * N_SHAPE
    stars = stars if stars is not None else sparse.csr_matrix((matrix.shape[0], 0))
    column_sums = np.asarray(matrix.multiply(matrix).sum(axis=0)).reshape(
        n_nodes, TABLE_SIZE, TABLE_SIZE
    )
    node_info = basis.information(column_sums)
    info = np.tensordot(terms**2, node_info, axes=(0, 0)).ravel()
    positive = info[info > INFORMATION_FLOOR * info.max()] if info.max() > 0 else info
    median = float(np.median(positive)) if positive.size else 1.0
    shape_info = (terms**2).T @ np.einsum("nij,nsij->ns", column_sums, shapes**2)
    star_norm = np.sqrt(np.asarray(stars.multiply(stars).sum(axis=0)).ravel())
    reg = regularisation
    scale = np.concatenate(
        [
            1.0 / np.sqrt(info + reg.prior**-2),
            1.0 / np.sqrt(shape_info.ravel() + reg.shape_prior**-2),
            1.0 / np.where(star_norm > 0, star_norm, 1.0),
        ]
    )
    constraints = _constraint_tables()
    w_smooth = np.sqrt(reg.smoothness) / reg.prior
    w_constraint = np.sqrt(CONSTRAINT_WEIGHT * median)
    # The penalties of the B-splines: (forward, adjoint, rows).
    penalties = [
        (lambda c: c.ravel() / reg.prior, lambda v: v.reshape(shape) / reg.prior, n_coef),
        (
            lambda c: w_constraint * np.einsum("kij,nij->nk", constraints, basis.tables(c)).ravel(),
            lambda v: basis.adjoint(
                w_constraint * np.einsum("kij,nk->nij", constraints, v.reshape(n_terms, 3))
            ),
            3 * n_terms,
        ),
    ]
    if w_smooth > 0:
        penalties.append(
            (
                lambda c: w_smooth * _second_differences(c),
                lambda v: w_smooth * _second_differences_adjoint(v, shape),
                2 * n_terms * (m - 2) * m,
            )
        )
    n_data = matrix.shape[0]
    n_rows = n_data + sum(p[2] for p in penalties) + n_shape
    split = n_coef + n_shape

    def forward(z: np.ndarray) -> np.ndarray:
        x = scale * np.ravel(z)
        c = x[:n_coef].reshape(shape)
        e = x[n_coef:split].reshape(n_terms, N_SHAPE)
        tables = node_tables(basis, terms, shapes, x[:split], n_coef)
        parts = [matrix @ tables.ravel() + stars @ x[split:]]
        parts += [p[0](c) for p in penalties]
        parts.append(e.ravel() / reg.shape_prior)
        return np.concatenate(parts)

    def adjoint(y: np.ndarray) -> np.ndarray:
        y = np.ravel(y)
        data = y[:n_data]
        back = (matrix.T @ data).reshape(n_nodes, TABLE_SIZE, TABLE_SIZE)
        c = np.tensordot(terms, basis.adjoint(back), axes=(0, 0))
        e = terms.T @ np.einsum("nij,nsij->ns", back, shapes)
        start_row = n_data
        for _, penalty_back, rows in penalties:
            c = c + penalty_back(y[start_row : start_row + rows])
            start_row += rows
        e = e + y[start_row:].reshape(n_terms, N_SHAPE) / reg.shape_prior
        return scale * np.concatenate([c.ravel(), e.ravel(), stars.T @ data])

    operator = LinearOperator(
        (n_rows, split + stars.shape[1]), matvec=forward, rmatvec=adjoint, dtype=float
    )
    rhs = np.concatenate([residual, np.zeros(n_rows - n_data)])
    z0 = np.zeros(split + stars.shape[1])
    if start is not None:
        z0[:split] = np.ravel(start) / scale[:split]
    # LSQR's many small vector products are slowed down by BLAS's threads (x25 on a
    # loaded machine).
    with threadpool_limits(1, user_api="blas"):
        z = lsqr(
            operator,
            rhs,
            atol=LSQR_TOLERANCE,
            btol=LSQR_TOLERANCE,
            iter_lim=LSQR_MAX_ITERATIONS,
            x0=z0,
        )[0]
    x = scale * z
    return x[:split], x[split:], n_coef


def solve_distortion(
    matrix: sparse.csr_matrix,
    residual: np.ndarray,
    terms: np.ndarray,
    shapes: np.ndarray,
    shape_prior: float,
    *,
    n_coef: int,
    stars: sparse.csr_matrix | None = None,
) -> np.ndarray:
    """:func:`solve_correction`'s solution when its prior holds the free tables at zero.

    The distortions and the stars' parameters alone: a distortion element's pixels are
    ``matrix`` times its node tables, a few dense columns beside the stars' sparse ones,
    solved exactly (normal equations, columns scaled to unit norm) instead of by LSQR
    through every table sample.

    Parameters
    ----------
    matrix, residual, terms, shapes, stars
        As :func:`solve_correction`.
    shape_prior : float
        Prior width of an element of the distortion.
    n_coef : int
        Number of the B-splines' coefficients (zeros in the solution).

    Returns
    -------
    ndarray
        The solution laid out as :func:`solve_correction`'s: zero coefficients, then the
        distortions (n_terms, N_SHAPE) flattened.
    """
    n_terms = terms.shape[1]
    n_shape = n_terms * N_SHAPE
    n_data = matrix.shape[0]
    columns = np.empty((n_data, n_shape))
    for k in range(n_terms):
        for j in range(N_SHAPE):
            tables = terms[:, k, None, None] * shapes[:, j]
            columns[:, k * N_SHAPE + j] = matrix @ tables.ravel()
    stars = stars if stars is not None else sparse.csr_matrix((n_data, 0))
    design = sparse.vstack(
        [
            sparse.hstack([sparse.csr_matrix(columns), stars]),
            sparse.hstack(
                [
                    sparse.identity(n_shape) / shape_prior,
                    sparse.csr_matrix((n_shape, stars.shape[1])),
                ]
            ),
        ]
    ).tocsc()
    norm = np.sqrt(np.asarray(design.multiply(design).sum(axis=0)).ravel())
    used = np.flatnonzero(norm > 0)  # a star without weighted pixels has no say
    design = design[:, used] @ sparse.diags(1.0 / norm[used])
    rhs = np.concatenate([residual, np.zeros(n_shape)])
    z = spsolve((design.T @ design).tocsc(), design.T @ rhs)
    x = np.zeros(norm.size)
    x[used] = np.atleast_1d(z) / norm[used]
    return np.concatenate([np.zeros(n_coef), x[:n_shape]])


def node_tables(
    basis: CorrectionBasis,
    terms: np.ndarray,
    shapes: np.ndarray | None,
    solution: np.ndarray,
    split: int,
) -> np.ndarray:
    """The nodes' corrections (n_nodes, TABLE_SIZE, TABLE_SIZE) of a :func:`solve_correction`.

    ``shapes`` None: the free correction alone (without the linear distortion).
    """
    n_terms = terms.shape[1]
    c = solution[:split].reshape(n_terms, basis.size, basis.size)
    free = basis.tables(np.tensordot(terms, c, axes=1))
    if shapes is None:
        return free
    e = terms @ solution[split:].reshape(n_terms, N_SHAPE)  # per node
    return free + np.einsum("ns,nsij->nij", e, shapes)
