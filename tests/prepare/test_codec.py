"""The compact storage of the prepared images: quantisation, dither, differences, errors."""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.prepare import codec

STEP = 1 / 16


def _frames(seed=0, shape=(40, 24, 24)):
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0.5, 30.0, shape).astype(np.float32)
    images = (rng.normal(0, 1, shape) * noise + rng.uniform(-5, 5e4, shape[1:])).astype(np.float32)
    u = codec.dither(
        rng.random(shape[0], dtype=np.float32),
        codec.dither_plane(
            rng.random(shape[1], dtype=np.float32), rng.random(shape[2], dtype=np.float32)
        ),
    )
    return images, noise, u


def test_quantisation_error_is_uniform_unbiased_and_small():
    images, noise, u = _frames()
    errors = codec.round_errors(noise, 7)
    step = codec.steps(errors, STEP)
    codes = codec.quantise(images, step, u)
    decoded = codec.decode(codes, step, u)
    error = (decoded.astype(np.float64) - images) / step
    # Half a step, and the rounding of the value to the 32-bit float it is returned as.
    assert np.all(np.abs(error) <= 0.5 + np.abs(images) * 2.0**-24 / step + 1e-6)
    # Uniform over one step: variance 1/12, mean 0; added variance under 0.1 % of the noise.
    assert abs(error.var() - 1 / 12) < 0.003 and abs(error.mean()) < 0.005
    added = (decoded.astype(np.float64) - images) ** 2 / noise.astype(np.float64) ** 2
    assert added.mean() < 0.001
    # Independent of the value: no correlation with the value's position within a step.
    within = images / step - np.floor(images / step)
    assert abs(np.corrcoef(within.ravel(), error.ravel())[0, 1]) < 0.02


def test_nan_and_missing_uncertainties():
    images, noise, u = _frames(1, (4, 5, 6))
    images[0, 1, 1] = np.nan
    noise[1, 2, 2] = np.nan  # a value without an uncertainty: the fallback step
    noise[2, 3, 3] = 0.0
    errors = codec.round_errors(noise, 7)
    step = codec.steps(errors, STEP)
    codes = codec.quantise(images, step, u)
    decoded = codec.decode(codes, step, u)
    assert codes[0, 1, 1] == codec.NAN_CODE and np.isnan(decoded[0, 1, 1])
    for k, r, c in ((1, 2, 2), (2, 3, 3)):
        assert abs(decoded[k, r, c] - images[k, r, c]) <= codec.FALLBACK_STEP
    assert np.isfinite(decoded).sum() == decoded.size - 1


def test_extreme_values_raise_their_stored_uncertainty():
    images = np.array([[[1e9, -3e8, 5.0]]], dtype=np.float32)
    noise = np.array([[[1.0, 1.0, 1.0]]], dtype=np.float32)
    errors = codec.round_errors(codec.raise_errors(images, noise, STEP), 10)
    assert errors[0, 0, 2] == 1.0 and errors[0, 0, 0] > 1.0
    step, zero = codec.steps(errors, STEP), np.zeros_like(images)
    decoded = codec.decode(codes := codec.quantise(images, step, zero), step, zero)
    assert np.abs(codes.astype(np.int64)).max() <= codec.MAX_STEPS * 1.01
    np.testing.assert_allclose(decoded, images, rtol=1e-6)


def test_differences_restore_every_code_exactly():
    rng = np.random.default_rng(3)
    codes = rng.integers(-(2**31), 2**31, (70, 3, 4), dtype=np.int64).astype(np.int32)
    codes[5] = codec.NAN_CODE
    stored = codec.to_differences(codes, 32)
    np.testing.assert_array_equal(stored[[0, 32, 64]], codes[[0, 32, 64]])
    np.testing.assert_array_equal(codec.from_differences(stored, 32), codes)
    again = codes.copy()
    assert codec.to_differences(again, 32, in_place=True) is again
    np.testing.assert_array_equal(again, stored)


@pytest.mark.parametrize("bits", [1, 5, 7, 10])
def test_rounded_errors(bits):
    rng = np.random.default_rng(bits)
    errors = rng.uniform(1e-3, 6e4, 10_000).astype(np.float32)
    half = codec.round_errors(errors, bits)
    assert half.dtype == np.float16
    relative = np.abs(codec.to_single(half).astype(np.float64) / errors - 1)
    assert relative.max() <= 2.0 ** -(bits + 1) * 1.001
    # The low mantissa bits are zero (they compress to nothing).
    assert np.all((half.view(np.uint16) & ((1 << (10 - bits)) - 1)) == 0)
    extreme = codec.round_errors(np.array([1e6, np.inf, np.nan], dtype=np.float32), bits)
    largest = 65504 - (2 ** (10 - bits) - 1) * 32  # the largest half with these bits
    assert extreme[0] == extreme[1] == largest and np.isnan(extreme[2])


def test_half_to_single_is_exact():
    half = np.arange(2**16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    single = codec.to_single(half)
    finite = np.isfinite(half)
    np.testing.assert_array_equal(single[finite], half[finite].astype(np.float32))


def test_errors_rounded_in_pieces_and_into_an_array(monkeypatch):
    """Rounding in pieces, into a given array, is rounding all at once; a given array of
    the wrong kind is refused."""
    rng = np.random.default_rng(3)
    errors = rng.uniform(1e-3, 7e4, (37, 41)).astype(np.float32)
    errors[5, :7] = np.nan
    whole = codec.round_errors(errors, 7)
    monkeypatch.setattr(codec, "ROUNDING_CHUNK", 100)
    out = np.empty(errors.shape, dtype=np.float16)
    assert codec.round_errors(errors, 7, out=out) is out
    np.testing.assert_array_equal(out.view(np.uint16), whole.view(np.uint16))
    with pytest.raises(ValueError, match="contiguous float16"):
        codec.round_errors(errors, 7, out=np.empty((41, 37), dtype=np.float16))


def test_codes_in_single_precision_unless_a_value_needs_double():
    """Codes are computed in 32 bits unless a value is beyond SINGLE_EXACT_STEPS steps;
    either width may be asked for, and both agree within a step."""
    rng = np.random.default_rng(8)
    errors = rng.uniform(5.0, 30.0, (16, 16)).astype(np.float32)
    images = rng.normal(100.0, 1.0, (16, 16)).astype(np.float32) * errors
    step = codec.steps(codec.round_errors(errors, 7), STEP)
    u = codec.dither(np.array([0.3], dtype=np.float32), rng.random((16, 16), dtype=np.float32))[0]
    codes, wide = codec.quantise_reporting(images, step, u)
    assert not wide
    np.testing.assert_array_equal(codes, codec.quantise(images, step, u, wide=False))
    assert np.abs(codec.quantise(images, step, u, wide=True) - codes).max() <= 1
    bright = images.copy()
    bright[3, 3] = 2 * codec.SINGLE_EXACT_STEPS * step[3, 3]
    codes, wide = codec.quantise_reporting(bright, step, u)
    assert wide
    np.testing.assert_array_equal(codes, codec.quantise(bright, step, u, wide=True))


def test_rounding_a_frame_of_errors_holds_pieces_not_frames():
    """Rounding a full frame's errors into a given array allocates a few pieces' worth of
    temporaries, not arrays of the frame's size (a worker's memory keeps its peak)."""
    import tracemalloc

    errors = np.full((2048, 2048), 7.3, dtype=np.float32)
    out = np.empty(errors.shape, dtype=np.float16)
    codec.round_errors(errors[:8], 7, out=out[:8])  # the look-up table, made once
    tracemalloc.start()
    try:
        codec.round_errors(errors, 7, out=out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # About 28 bytes of temporaries per value rounded at once; a frame is many pieces.
    assert errors.size >= 16 * codec.ROUNDING_CHUNK
    assert peak < 32 * codec.ROUNDING_CHUNK
