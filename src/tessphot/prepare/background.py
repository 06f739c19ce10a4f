"""Sky background of one FFI: a smooth 2-D model estimated on a coarse mesh.

Per frame:

1. The light of catalogued stars is predicted with the PRF (once per CCD, at the catalogue
   positions; moved to each frame's pointing by whole pixels,
   :mod:`tessphot.prepare.starlight`) and subtracted; pixels where it exceeds a fraction of
   the sky noise, saturated pixels with their bleed columns, and (after a first pass)
   pixels that stand out of the model are masked.
2. photutils' ``Background2D`` estimates a sigma-clipped median in boxes (the mesh) with its
   scatter; the mesh uncertainty is 1.25 rms / sqrt(n) per box.
3. The mesh is smoothed in time by the caller (a straight line fitted to each box over a
   window of about 3 h, or a parabola where the box's series bends significantly, as the
   scattered-light ramps at the orbit ends do; never across the orbit gap or another gap
   in time: :mod:`tessphot.prepare.smoothing`) and brought to full resolution with a
   bicubic spline through the box centres (:class:`MeshGeometry`).

Compared with the original (section 5.2 of the TASOC notes) this needs no per-radius KDE
modes (its slowest step), removes the light of faint catalogued stars instead of letting it
bias the sky, and gives the uncertainty of the background.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property

import bottleneck as bn
import numpy as np
from astropy.stats import SigmaClip
from photutils.background import Background2D, MedianBackground
from scipy import ndimage

from tessphot.config.prepare import BackgroundSettings
from tessphot.prepare.background_anomalies import MEDIAN_EFFICIENCY, anomalies
from tessphot.prepare.background_surface import MeshSurface

#: Rows of a full-resolution surface evaluated at once in 64 bits (a band of a few MB).
EVALUATION_ROWS = 256
#: Pixels binned at once: a band of rows of a few MB [px].
BIN_BAND_PIXELS = 2**19


def grow_bleeds(saturated: np.ndarray, rows: int, cols: int = 1) -> np.ndarray:
    """Saturated pixels grown along their bleed columns.

    They grow by ``rows`` along their columns (the partly filled tips of bleed columns) and
    by ``cols`` sideways.
    """
    columns = np.flatnonzero(saturated.any(axis=0))
    if not columns.size:
        return saturated
    # A dilation by a rectangle is a running maximum along the columns (only those with a
    # saturated pixel: a full frame has few) spread sideways by ``cols`` (exact, and cheap
    # whatever the margins).
    along = ndimage.maximum_filter1d(
        saturated[:, columns].view(np.uint8), 2 * int(rows) + 1, axis=0, mode="constant", cval=0
    ).view(bool)
    grown = np.zeros_like(saturated)
    for offset in range(-int(cols), int(cols) + 1):
        target = columns + offset
        inside = (target >= 0) & (target < saturated.shape[1])
        grown[:, target[inside]] |= along[:, inside]
    return grown


def saturation_mask(image: np.ndarray, settings: BackgroundSettings) -> np.ndarray:
    """Saturated pixels grown along their columns (bleed trails) and slightly sideways."""
    with np.errstate(invalid="ignore"):
        sat = image > settings.saturation_rate  # False for NaN
    return grow_bleeds(sat, settings.bleed_margin_rows, settings.bleed_margin_cols)


def box_shape(shape: tuple[int, int], box_size: int) -> tuple[int, int]:
    """Box size per axis close to ``box_size`` that divides the region into equal boxes."""
    out = []
    for n in shape:
        count = max(1, int(round(n / box_size)))
        out.append(-(-n // count))
    return out[0], out[1]


def _box_centres(n: int, box: int) -> np.ndarray:
    starts = np.arange(0, n, box)
    ends = np.minimum(starts + box, n)
    return 0.5 * (starts + ends - 1)


class MeshGeometry:
    """Boxes of the background mesh over a region, optionally on a binned image.

    The statistics are measured on the image binned ``binning`` x ``binning`` (averaging, so
    box centres stay where they are); the boxes are ``box_size`` real pixels wide, adjusted
    to divide the region evenly.

    Parameters
    ----------
    shape : tuple of int
        Region shape (ny, nx) [px].
    box_size : int
        Box size [real px].
    binning : int
        Binning of the image for the statistics.
    """

    def __init__(self, shape: tuple[int, int], box_size: int, binning: int = 1):
        self.shape = tuple(int(v) for v in shape)
        self.binning = int(binning)
        self.binned_shape = tuple(-(-n // self.binning) for n in self.shape)
        self.binned_box = box_shape(self.binned_shape, max(1, box_size // self.binning))
        self.mesh_shape = tuple(
            -(-n // b) for n, b in zip(self.binned_shape, self.binned_box, strict=True)
        )
        # Box centres in real pixel coordinates.
        b = self.binning
        self.centres = tuple(
            _box_centres(n, bb) * b + (b - 1) / 2
            for n, bb in zip(self.binned_shape, self.binned_box, strict=True)
        )

    def bin(
        self, image: np.ndarray, reduce: str = "mean", valid: np.ndarray | None = None
    ) -> np.ndarray:
        """Bin an image, ignoring NaN (and the pixels not ``valid``, when given).

        ``reduce`` is 'mean' or 'quadrature' (the uncertainty of the mean of the finite
        pixels). Blocks without a finite valid pixel give NaN.
        """
        b = self.binning
        if b == 1:
            valid = np.isfinite(image) if valid is None else valid & np.isfinite(image)
            return np.where(valid, image, np.nan)
        ny, nx = self.binned_shape
        out = np.empty((ny, nx))
        # In bands of rows: the temporaries are a band's, not a whole frame's.
        step = max(1, BIN_BAND_PIXELS // (nx * b * b))
        # A region not a multiple of the binning is padded, in 64 bits.
        padded = image.shape != (ny * b, nx * b)
        for r0 in range(0, ny, step):
            r1 = min(r0 + step, ny)
            rows = slice(r0 * b, r1 * b)
            band = None if valid is None else valid[rows]
            out[r0:r1] = self._bin_band(image[rows], band, r1 - r0, reduce, padded)
        return out

    def _bin_band(
        self, image: np.ndarray, valid: np.ndarray | None, rows: int, reduce: str, pad: bool
    ) -> np.ndarray:
        """:meth:`bin` of the full-resolution rows of ``rows`` binned rows."""
        b = self.binning
        nx = self.binned_shape[1]
        valid = np.isfinite(image) if valid is None else valid & np.isfinite(image)
        if pad:
            padded = np.zeros((rows * b, nx * b))
            padded[: image.shape[0], : image.shape[1]] = image
            image = padded
            padded_valid = np.zeros((rows * b, nx * b), dtype=bool)
            padded_valid[: valid.shape[0], : valid.shape[1]] = valid
            valid = padded_valid
        values = np.where(valid, image, np.zeros((), dtype=image.dtype))
        if reduce == "quadrature":
            values = values**2
        # Strided sums over the b x b offsets (much faster than a reshape reduction).
        total = np.zeros((rows, nx))
        count = np.zeros((rows, nx), dtype=np.int32)
        for dy in range(b):
            for dx in range(b):
                total += values[dy::b, dx::b]
                count += valid[dy::b, dx::b]
        with np.errstate(invalid="ignore", divide="ignore"):
            if reduce == "quadrature":
                return np.where(count > 0, np.sqrt(total) / count, np.nan)
            return np.where(count > 0, total / count, np.nan)

    def expand(self, binned: np.ndarray, rows: slice | None = None) -> np.ndarray:
        """A binned image brought back to full resolution by repetition.

        ``rows``: only these full-resolution rows (default all).
        """
        b = self.binning
        rows = slice(0, self.shape[0]) if rows is None else rows
        first = rows.start // b
        part = binned[first : -(-rows.stop // b)]
        full = np.repeat(np.repeat(part, b, axis=0), b, axis=1)
        skip = rows.start - first * b
        return full[skip : skip + rows.stop - rows.start, : self.shape[1]]

    @cached_property
    def surface(self) -> MeshSurface:
        """The smooth surface through the mesh (what is subtracted and stored)."""
        return MeshSurface(self.shape, self.centres)

    def evaluate(self, mesh: np.ndarray, binned: bool = False) -> np.ndarray:
        """The smooth surface through the mesh (:class:`MeshSurface`).

        At full resolution, or at the centres of the binned pixels.
        """
        if binned:
            b = self.binning
            rows = np.arange(self.binned_shape[0]) * b + (b - 1) / 2
            cols = np.arange(self.binned_shape[1]) * b + (b - 1) / 2
        else:
            rows = np.arange(self.shape[0], dtype=float)
            cols = np.arange(self.shape[1], dtype=float)
        return self.surface.evaluate(mesh, rows, cols)

    def evaluate_single(self, mesh: np.ndarray) -> np.ndarray:
        """The surface at full resolution in 32-bit floats, as :meth:`evaluate` rounded.

        Evaluated in 64 bits a band of rows at a time: no 64-bit copy of the whole region.
        """
        out = np.empty(self.shape, dtype=np.float32)
        coefficients = self.surface.coefficients(mesh)
        for r0 in range(0, self.shape[0], EVALUATION_ROWS):
            rows = slice(r0, min(r0 + EVALUATION_ROWS, self.shape[0]))
            out[rows] = self.evaluate_rows(coefficients, rows)
        return out

    def evaluate_rows(self, coefficients: np.ndarray, rows: slice) -> np.ndarray:
        """Rows ``rows`` of the full-resolution surface, in 32-bit floats.

        ``coefficients``: :meth:`MeshSurface.coefficients` of the mesh; evaluated in 64 bits.
        """
        values = self.surface.evaluate_coefficients(
            coefficients,
            np.arange(rows.start, rows.stop, dtype=float),
            np.arange(self.shape[1], dtype=float),
        )
        return values.astype(np.float32)


def dilate_cross(mask: np.ndarray, iterations: int) -> np.ndarray:
    """``mask`` grown by one pixel along rows and columns, ``iterations`` times.

    The same as :func:`scipy.ndimage.binary_dilation` with its default (cross) structure,
    in a few whole-array operations (20 times faster on a binned full frame).
    """
    out = mask
    for _ in range(int(iterations)):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def _fill_mesh(mesh: np.ndarray) -> np.ndarray:
    """Replace NaN boxes by the mean of their valid neighbours, growing outwards."""
    mesh = mesh.copy()
    if np.all(np.isnan(mesh)):
        return mesh
    while np.isnan(mesh).any():
        valid = ~np.isnan(mesh)
        total = ndimage.convolve(np.where(valid, mesh, 0.0), np.ones((3, 3)), mode="nearest")
        count = ndimage.convolve(valid.astype(float), np.ones((3, 3)), mode="nearest")
        grow = ~valid & (count > 0)
        mesh[grow] = total[grow] / count[grow]
    return mesh


@dataclass
class FrameBackground:
    """Background estimate of one frame."""

    mesh: np.ndarray
    mesh_err: np.ndarray
    #: Pixels not used for the estimate.
    not_used: np.ndarray
    #: Full-resolution model of this frame alone (before time smoothing).
    model: np.ndarray
    #: Pixels in regions where the smooth model misses structure of the sky.
    anomalous: np.ndarray


def estimate_background(
    image: np.ndarray,
    uncertainty: np.ndarray,
    starlight: np.ndarray | None,
    settings: BackgroundSettings,
    exclude: np.ndarray | None = None,
) -> FrameBackground:
    """Estimate the sky background of one frame.

    Parameters
    ----------
    image : ndarray
        Calibrated image [e-/s].
    uncertainty : ndarray
        Its 1-sigma uncertainty [e-/s] (sets the noise level for the masks).
    starlight : ndarray or None
        Predicted light of catalogued stars [e-/s] (subtracted, and masked where bright).
    settings : BackgroundSettings
        Tunables.
    exclude : ndarray of bool, optional
        Pixels to leave out entirely (manual excludes).

    Returns
    -------
    FrameBackground
    """
    geometry = MeshGeometry(image.shape, settings.box_size, settings.binning)
    sky_noise = _sky_noise(uncertainty)
    mask, data = _first_mask(image, sky_noise, starlight, settings, exclude)
    # The statistics run on the binned image.
    # Binned pixels average their unmasked pixels; they are masked when all of them are.
    bdata = geometry.bin(data, valid=~mask)
    del data  # a whole frame: only its binned version is used from here on
    bunc = geometry.bin(uncertainty, "quadrature", valid=~mask)
    bmask = ~np.isfinite(bdata)
    bnoise = float(np.nanmedian(bunc)) if np.isfinite(bunc).any() else sky_noise
    model = np.zeros(geometry.binned_shape)
    mesh = np.zeros(geometry.mesh_shape)
    if bmask.all():
        # No sky pixel at all (a small cutout filled by a saturated star): the background
        # cannot be measured; it is left at zero and every pixel flagged as not used.
        return FrameBackground(
            mesh=mesh,
            mesh_err=np.zeros(geometry.mesh_shape),
            not_used=np.ones(image.shape, dtype=bool),
            model=np.zeros(image.shape),
            anomalous=np.zeros(image.shape, dtype=bool),
        )
    mesh_err = np.zeros(geometry.mesh_shape)
    # The noise a residual is measured in [e-/s].
    noise = np.where(bunc > 0, bunc, bnoise)
    for iteration in range(settings.iterations):
        if iteration:
            with np.errstate(invalid="ignore"):  # NaN (masked) is not an outlier
                outliers = (bdata - model) / noise > settings.source_sigma
            if settings.source_dilation:
                outliers = dilate_cross(outliers, settings.source_dilation)
            if (bmask | outliers).all():
                break  # nothing left to refine the model with
            bmask |= outliers
        # Each pass measures what the current model misses. The residual is flat inside a
        # box, so a box median no longer depends on where its unmasked pixels lie (with a
        # steep scattered-light gradient it would otherwise be biased).
        try:
            # What the statistics see: the masked pixels are zero (and masked).
            residual = np.nan_to_num(bdata - model, copy=False, nan=0.0)
            delta, rms, npix = _mesh_statistics(residual, bmask, geometry, settings)
        except ValueError:
            # No box keeps enough sky pixels (photutils refuses): the frame has no estimate
            # when this is the first pass, else the previous pass's model stays.
            if iteration == 0:
                return _no_estimate(geometry, image.shape, mask)
            break
        bad = ~np.isfinite(delta) | (npix < 1)
        delta[bad] = np.nan
        mesh_err = MEDIAN_EFFICIENCY * rms / np.sqrt(np.maximum(npix, 1.0))
        mesh_err[bad] = np.nan
        mesh = mesh + _fill_mesh(delta)
        mesh_err = _fill_mesh(mesh_err)
        model = geometry.evaluate(mesh, binned=True)
    del residual, noise  # the passes' working arrays (the frame's memory peaks below)
    # Background anomalies: sub-boxes whose background pixels the smooth model misses.
    anomalous = geometry.expand(
        anomalies(
            bdata - model, ~bmask, bunc, settings, max(1, settings.anomaly_box // geometry.binning)
        )
    )
    # Pixels not used: the masks, at full resolution.
    mask |= geometry.expand(bmask)
    # 32-bit like the images (the model is only subtracted from them).
    model = geometry.evaluate_single(mesh)
    return FrameBackground(
        mesh=mesh, mesh_err=mesh_err, not_used=mask, model=model, anomalous=anomalous
    )


def _sky_noise(uncertainty: np.ndarray) -> float:
    """The typical pixel noise [e-/s]: the median uncertainty (1 when none is finite)."""
    noise = float(bn.nanmedian(uncertainty))
    return noise if np.isfinite(noise) else 1.0


def _first_mask(
    image: np.ndarray,
    sky_noise: float,
    starlight: np.ndarray | None,
    settings: BackgroundSettings,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The pixels masked before the first pass, and the image with the starlight removed."""
    mask = ~np.isfinite(image) | saturation_mask(image, settings)
    if exclude is not None:
        mask |= exclude
    # NaN pixels are masked: they never reach the statistics.
    data = image
    if starlight is not None:
        data = data - starlight
        starred = mask | (starlight > settings.star_mask_fraction * sky_noise)
        # A small region (a cutout) may be covered by the light of its stars: then their
        # predicted light is only subtracted, not masked.
        if not starred.all():
            mask = starred
    return mask, data


def sky_pixels_per_box(
    image: np.ndarray,
    uncertainty: np.ndarray,
    starlight: np.ndarray | None,
    settings: BackgroundSettings,
) -> tuple[np.ndarray, float]:
    """Unmasked (binned) pixels of each mesh box in the first pass.

    Returns the counts and the number a box must exceed to count (``min_box_fraction`` of
    its pixels).
    """
    geometry = MeshGeometry(image.shape, settings.box_size, settings.binning)
    mask, _ = _first_mask(image, _sky_noise(uncertainty), starlight, settings)
    unmasked = np.isfinite(geometry.bin(np.where(mask, np.nan, 1.0)))
    by, bx = geometry.binned_box
    ny, nx = geometry.mesh_shape
    padded = np.zeros((ny * by, nx * bx))
    padded[: unmasked.shape[0], : unmasked.shape[1]] = unmasked
    counts = padded.reshape(ny, by, nx, bx).sum(axis=(1, 3))
    return counts, by * bx * settings.min_box_fraction


def _mesh_statistics(
    residual: np.ndarray, bmask: np.ndarray, geometry: MeshGeometry, settings: BackgroundSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sigma-clipped median, rms and pixel count of every box (photutils' Background2D).

    ``residual`` is finite (its masked pixels hold any finite value).

    Raises
    ------
    ValueError
        When no box has enough unmasked pixels.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bkg = Background2D(
            residual,
            geometry.binned_box,
            mask=bmask,
            filter_size=(1, 1),
            sigma_clip=SigmaClip(sigma=settings.clip_sigma, maxiters=5),
            bkg_estimator=MedianBackground(),
            exclude_percentile=100.0 * (1.0 - settings.min_box_fraction),
        )
        delta = np.array(bkg.background_mesh, dtype=float)
        rms = np.array(bkg.background_rms_mesh, dtype=float)
        npix = np.array(
            bkg.n_pixels_mesh if hasattr(bkg, "n_pixels_mesh") else bkg.npixels_mesh,
            dtype=float,
        )
    return delta, rms, npix


def _no_estimate(geometry: MeshGeometry, shape: tuple[int, int], mask: np.ndarray):
    """A frame without a background estimate: NaN mesh, every masked pixel not used."""
    nan = np.full(geometry.mesh_shape, np.nan)
    return FrameBackground(
        mesh=nan,
        mesh_err=nan.copy(),
        not_used=mask.copy(),
        model=np.full(shape, np.nan),
        anomalous=np.zeros(shape, dtype=bool),
    )
