"""Compact storage of the prepared images: noise-aware quantisation and rounded errors.

The images are stored as scaled integers (``images``, int32) with a step ``q`` of at most
``quantisation_step`` (default 1/16) of each pixel's stored uncertainty, with subtractive
dithering as in FITS tile compression: ``code = round(x / q + u)``, ``x' = (code - u) q``,
with ``u`` uniform in [-0.5, 0.5) and known to the reader. The error ``x' - x`` is uniform
over one step and independent of ``x``: it adds ``q^2 / 12`` to each pixel's variance,
at most 0.033 % at 1/16, with no bias.

``u`` is ``frac(a_t + frac(b_row + c_col)) - 1/2`` (32-bit floats) with three stored random
sequences (one value per frame, per row and per column of the region): the values of any
two pixels are independent and uniform, so the quantisation errors of an aperture sum are
uncorrelated; a stamp's ``u`` costs two broadcast sums.

Within each block of frames (one chunk's, ``images.attrs['block_frames']``) the codes are stored
as differences from the previous frame (the first frame of a block as it is): the static
image costs nothing after the block's first frame. The differences are taken in wrapping
32-bit arithmetic, so the cumulative sum restores every code exactly, the NaN code too.

The uncertainties (``images_err``) are half-precision floats rounded to
``error_mantissa_bits`` bits of mantissa (7: within 0.4 %), stored as their 16-bit patterns
(unsigned integers) in the same blocks of differences from the previous frame (wrapping
16-bit arithmetic): a pixel's uncertainty mostly rounds to the same value in the next frame,
and a zero difference costs almost nothing. The step ``q`` is computed from the stored
value, so writer and reader agree exactly.
"""

from __future__ import annotations

import functools

import numpy as np

#: Code of a NaN pixel.
NAN_CODE = np.iinfo(np.int32).min
#: Largest ``|x| / q`` stored: the uncertainty stored is raised where a pixel's value would
#: need more (never for real data: a Poisson-limited pixel is below 2^21 steps).
MAX_STEPS = 2**29
#: Below this many steps codes and values are computed in 32-bit floats, exact to 1/32 of
#: a step (in 64-bit otherwise): every pixel of real data.
SINGLE_EXACT_STEPS = 2.0**18
#: Step of pixels with a finite value but no usable uncertainty (NaN or not positive)
#: [e-/s].
FALLBACK_STEP = np.float32(2.0**-8)
#: Largest half-precision value.
FLOAT16_MAX = float(np.finfo(np.float16).max)
#: Explicit mantissa bits of a half- and a single-precision float.
FLOAT16_MANTISSA_BITS, FLOAT32_MANTISSA_BITS = 10, 23
#: Uncertainties rounded at once: the temporaries (7 x 4 bytes per value) stay small.
ROUNDING_CHUNK = 2**18


#: Bits of a single-precision float below the 10 of a half's mantissa.
_LOW_BITS = FLOAT32_MANTISSA_BITS - FLOAT16_MANTISSA_BITS
#: The difference of the exponent biases (127 - 15) in a single's exponent field.
_EXPONENT_REBASE = (127 - 15) << FLOAT32_MANTISSA_BITS


@functools.cache
def _half_of_single_top() -> np.ndarray:
    """The half-precision value of every single-precision value whose low 13 bits are 0."""
    top = np.arange(2 ** (32 - _LOW_BITS), dtype=np.uint32) << np.uint32(_LOW_BITS)
    with np.errstate(over="ignore"):
        return top.view(np.float32).astype(np.float16)


@functools.cache
def _single_of_half() -> np.ndarray:
    """The single-precision value of every half-precision value."""
    return np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)


def to_single(half: np.ndarray) -> np.ndarray:
    """Half-precision values as single precision (exact).

    Normal values by moving their bits (sign, exponent rebased, mantissa); zeros,
    subnormals, infinities and NaN from a table of every half-precision value.
    """
    bits = half.view(np.uint16)
    magnitude = (bits & np.uint16(0x7FFF)).astype(np.uint32)
    single = (magnitude << np.uint32(_LOW_BITS)) + np.uint32(_EXPONENT_REBASE)
    single |= (bits & np.uint16(0x8000)).astype(np.uint32) << np.uint32(16)
    exponent = bits & np.uint16(0x7C00)
    special = (exponent == 0) | (exponent == 0x7C00)
    if special.any():
        single[special] = _single_of_half().view(np.uint32)[bits[special]]
    return single.view(np.float32)


def round_errors(
    errors: np.ndarray, mantissa_bits: int, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Uncertainties as half-precision floats with ``mantissa_bits`` bits (rounded).

    Values above the half-precision range are stored as its largest value with
    ``mantissa_bits`` bits; NaN stays NaN. Computed :data:`ROUNDING_CHUNK` values at a
    time, into ``out`` when given (a contiguous half-precision array of the same shape).
    """
    errors = np.asarray(errors)
    if out is None:
        out = np.empty(errors.shape, dtype=np.float16)
    elif out.shape != errors.shape or out.dtype != np.float16 or not out.flags.c_contiguous:
        raise ValueError("out must be a contiguous float16 array of the errors' shape")
    values, rounded = errors.reshape(-1), out.reshape(-1)
    for start in range(0, values.size, ROUNDING_CHUNK):
        part = slice(start, start + ROUNDING_CHUNK)
        rounded[part] = _rounded_half(values[part], mantissa_bits)
    return out


def _rounded_half(errors: np.ndarray, mantissa_bits: int) -> np.ndarray:
    """:func:`round_errors` of a 1-d array."""
    values = np.minimum(errors, np.float32(FLOAT16_MAX), dtype=np.float32)
    drop = FLOAT32_MANTISSA_BITS - int(mantissa_bits)
    bits = values.view(np.uint32)
    finite = np.isfinite(values)
    # Round the mantissa to nearest in the single-precision value: the half-precision
    # value is then a table look-up of its top 19 bits (exact within the normal range).
    rounded = (bits + np.uint32(1 << (drop - 1))) & np.uint32(~((1 << drop) - 1) & 0xFFFFFFFF)
    np.copyto(bits, rounded, where=finite)
    half = np.take(_half_of_single_top(), bits >> np.uint32(_LOW_BITS))
    # Rounding up the largest values must not reach infinity: they get the largest value
    # with the bits kept.
    largest = np.uint16(0x7C00 - (1 << (FLOAT16_MANTISSA_BITS - int(mantissa_bits))))
    half[np.isinf(half) & finite] = largest.view(np.float16)
    return half


def steps(errors: np.ndarray, fraction: float) -> np.ndarray:
    """The quantisation step of each pixel from its stored uncertainty [e-/s] (float32).

    ``errors``: as stored (half precision or its bit patterns), or their exact
    single-precision values.
    """
    if errors.dtype == np.uint16:
        errors = errors.view(np.float16)
    err = to_single(errors) if errors.dtype == np.float16 else errors.astype(np.float32)
    with np.errstate(invalid="ignore"):
        usable = err > 0  # False for NaN
    err *= np.float32(fraction)
    err[~usable] = FALLBACK_STEP
    return err


def raise_errors(images: np.ndarray, errors: np.ndarray, fraction: float) -> np.ndarray:
    """The uncertainties, raised where a value would exceed :data:`MAX_STEPS` steps."""
    floor = np.abs(images) * np.float32(1.0 / (MAX_STEPS * fraction))
    with np.errstate(invalid="ignore"):
        high = floor > errors
    return np.where(high, floor, errors) if high.any() else errors


def dither_plane(row_values: np.ndarray, col_values: np.ndarray) -> np.ndarray:
    """The part of the dither shared by every frame: ``frac(b_row + c_col)`` (float32)."""
    plane = row_values.astype(np.float32)[:, None] + col_values.astype(np.float32)[None, :]
    plane -= np.floor(plane)
    return plane


def dither(time_values: np.ndarray, plane: np.ndarray) -> np.ndarray:
    """The dither ``u = frac(a_t + plane) - 1/2`` of frames x rows x columns (float32)."""
    u = time_values.astype(np.float32)[:, None, None] + plane[None]
    u -= np.floor(u)
    u -= np.float32(0.5)
    return u


def quantise(
    images: np.ndarray, step: np.ndarray, u: np.ndarray, *, wide: bool | None = None
) -> np.ndarray:
    """The codes of images with their steps (:func:`steps`) and dither.

    ``wide``: compute in 64 bits (exact to a fraction of a step however many steps a value
    is) or in 32 (exact to 1/32 of a step below :data:`SINGLE_EXACT_STEPS` steps); None:
    in 64 bits when a value needs it.
    """
    return quantise_reporting(images, step, u, wide=wide)[0]


def quantise_reporting(
    images: np.ndarray, step: np.ndarray, u: np.ndarray, *, wide: bool | None = None
) -> tuple[np.ndarray, bool]:
    """:func:`quantise`'s codes, and whether they were computed in 64 bits."""
    scaled = np.divide(images, step, dtype=np.float64 if wide else np.float32)
    if wide is None:
        with np.errstate(invalid="ignore"):
            wide = bool(np.nanmax(np.abs(scaled), initial=0.0) >= SINGLE_EXACT_STEPS)
        if wide:
            scaled = np.divide(images, step, dtype=np.float64)
    scaled += u
    np.rint(scaled, out=scaled)
    finite = np.isfinite(scaled)
    with np.errstate(invalid="ignore"):  # NaN gets its code below
        codes = scaled.astype(np.int32)
    codes[~finite] = NAN_CODE
    return codes, bool(wide)


def decode(codes: np.ndarray, step: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The images (float32, NaN restored) from their codes, steps (:func:`steps`) and dither."""
    nan = codes == NAN_CODE
    large = np.abs(codes).max(initial=0) >= SINGLE_EXACT_STEPS  # the NaN code stays negative
    values = np.subtract(codes, u, dtype=np.float64 if large else np.float32)
    values *= step
    values[nan] = np.nan
    return values.astype(np.float32, copy=False)


def to_differences(codes: np.ndarray, block: int, *, in_place: bool = False) -> np.ndarray:
    """Integers (t, ...) as differences from the previous frame within blocks of frames.

    Codes (int32) or uncertainties' bit patterns (uint16), in wrapping arithmetic.
    ``codes[0]`` must be the first frame of a block. ``in_place``: overwrite ``codes``
    (no copy of a block of full frames).
    """
    out = codes if in_place else codes.copy()
    with np.errstate(over="ignore"):
        for t0 in range(0, out.shape[0], block):
            # From the last frame back, so that each difference uses the original codes.
            for t in range(min(t0 + block, out.shape[0]) - 1, t0, -1):
                np.subtract(out[t], out[t - 1], out=out[t])
    return out


def from_differences(stored: np.ndarray, block: int) -> np.ndarray:
    """The integers of frames stored by :func:`to_differences` (wrapping sums, exact)."""
    n = stored.shape[0]
    whole = n - n % block
    out = np.empty_like(stored)
    blocks = stored[:whole].reshape(whole // block, block, *stored.shape[1:])
    np.cumsum(blocks, axis=1, dtype=stored.dtype, out=out[:whole].reshape(blocks.shape))
    if whole < n:
        np.cumsum(stored[whole:], axis=0, dtype=stored.dtype, out=out[whole:])
    return out
