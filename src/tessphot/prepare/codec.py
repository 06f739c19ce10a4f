"""Compact storage of the prepared images: noise-aware quantisation and rounded errors.

The images are stored as scaled integers (``images``, int32) with a step ``q`` of at most
``quantisation_step`` (default 1/16) of each pixel's stored uncertainty, with subtractive
dithering as in FITS tile compression: ``code = round(x / q + u)``, ``x' = (code - u) q``,
with ``u`` uniform in [-0.5, 0.5) and known to the reader. The error ``x' - x`` is uniform
over one step and independent of ``x``: it adds ``q^2 / 12`` to each pixel's variance,
at most 0.033 % at 1/16, with no bias.

``u`` is ``frac(a_t + b_row + c_col) - 1/2`` with three stored random sequences (one value per
frame, per row and per column of the region): the values of any two pixels are independent
and uniform, so the quantisation errors of an aperture sum are uncorrelated; a stamp's ``u``
costs one broadcast sum.

Within each block of frames (one chunk's, ``images.attrs['block_frames']``) the codes are stored
as differences from the previous frame (the first frame of a block as it is): the static
image costs nothing after the block's first frame. The differences are taken in wrapping
32-bit arithmetic, so the cumulative sum restores every code exactly, the NaN code too.

The uncertainties (``images_err``) are stored as half-precision floats rounded to
``error_mantissa_bits`` bits of mantissa (7: within 0.4 %); the step ``q`` is computed from
the stored value, so writer and reader agree exactly.
"""

from __future__ import annotations

import numpy as np

#: Code of a NaN pixel.
NAN_CODE = np.iinfo(np.int32).min
#: Largest ``|x| / q`` stored: the uncertainty stored is raised where a pixel's value would
#: need more (never for real data: a Poisson-limited pixel is below 2^20 steps).
MAX_STEPS = 2**29
#: Step of pixels with a finite value but no usable uncertainty (NaN or not positive)
#: [e-/s].
FALLBACK_STEP = 2.0**-8
#: Largest half-precision value.
FLOAT16_MAX = float(np.finfo(np.float16).max)
#: Explicit mantissa bits of a half-precision float.
FLOAT16_MANTISSA_BITS = 10


def round_errors(errors: np.ndarray, mantissa_bits: int) -> np.ndarray:
    """Uncertainties as half-precision floats with ``mantissa_bits`` bits (rounded).

    Values above the half-precision range are stored as its largest value; NaN stays NaN.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        half = np.minimum(errors, FLOAT16_MAX).astype(np.float16)
    drop = FLOAT16_MANTISSA_BITS - int(mantissa_bits)
    if drop <= 0:
        return half
    bits = half.view(np.uint16).astype(np.uint32)
    rounded = (bits + (1 << (drop - 1))) & ~np.uint32((1 << drop) - 1)
    finite = np.isfinite(half)
    # Rounding up the largest values must not reach infinity.
    rounded = np.where(finite, np.minimum(rounded, 0x7BFF), bits)
    return rounded.astype(np.uint16).view(np.float16)


def steps(errors: np.ndarray, fraction: float) -> np.ndarray:
    """The quantisation step of each pixel from its stored uncertainty [e-/s] (float64)."""
    err = errors.astype(np.float64)
    usable = np.isfinite(err) & (err > 0)
    return np.where(usable, err * fraction, FALLBACK_STEP)


def raise_errors(images: np.ndarray, errors: np.ndarray, fraction: float) -> np.ndarray:
    """The uncertainties, raised where a value would exceed :data:`MAX_STEPS` steps."""
    with np.errstate(invalid="ignore"):
        floor = np.abs(images) / (MAX_STEPS * fraction)
        return np.where(floor > errors, floor, errors)


def dither(time_values: np.ndarray, row_values: np.ndarray, col_values: np.ndarray) -> np.ndarray:
    """The dither ``u`` of frames x rows x columns, in [-0.5, 0.5)."""
    total = (
        time_values[:, None, None].astype(np.float64)
        + row_values[None, :, None]
        + col_values[None, None, :]
    )
    return total - np.floor(total) - 0.5


def encode(images: np.ndarray, errors: np.ndarray, u: np.ndarray, fraction: float) -> np.ndarray:
    """The codes of images (t, rows, cols) with their stored uncertainties and dither."""
    with np.errstate(invalid="ignore"):
        codes = np.rint(images / steps(errors, fraction) + u)
    finite = np.isfinite(codes)
    return np.where(finite, codes, NAN_CODE).astype(np.int32)


def decode(codes: np.ndarray, errors: np.ndarray, u: np.ndarray, fraction: float) -> np.ndarray:
    """The images (float32, NaN restored) from their codes, stored uncertainties and dither."""
    values = (codes - u) * steps(errors, fraction)
    values[codes == NAN_CODE] = np.nan
    return values.astype(np.float32)


def to_differences(codes: np.ndarray, block: int) -> np.ndarray:
    """Codes (t, ...) as differences from the previous frame within blocks of frames.

    ``codes[0]`` must be the first frame of a block.
    """
    out = codes.copy()
    for t0 in range(0, codes.shape[0], block):
        t1 = min(t0 + block, codes.shape[0])
        with np.errstate(over="ignore"):
            out[t0 + 1 : t1] = codes[t0 + 1 : t1] - codes[t0 : t1 - 1]
    return out


def from_differences(stored: np.ndarray, block: int) -> np.ndarray:
    """The codes of frames stored by :func:`to_differences` (wrapping sums, exact)."""
    out = np.empty_like(stored)
    for t0 in range(0, stored.shape[0], block):
        np.cumsum(stored[t0 : t0 + block], axis=0, dtype=np.int32, out=out[t0 : t0 + block])
    return out
