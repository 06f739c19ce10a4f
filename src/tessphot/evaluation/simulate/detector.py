"""The CCD: saturation with charge bleeding along columns, shot and read noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessphot.constants import (
    CR_BLOCK_SIZE,
    FULL_FRAME_SHAPE,
    FULL_WELL,
    INTEGRATION_TIME,
    OUTPUT_WIDTH,
    SCIENCE_COLUMN_OFFSET,
    SCIENCE_SIZE,
)

#: Read noise of the four outputs A-D [e- per pixel per 2-s frame] (drawn around ~10 e-).
READ_NOISE_RANGE = (7.0, 11.0)
#: Gain range of the four outputs [e-/ADU] (header values only; images are in e-/s).
GAIN_RANGE = (5.1, 5.4)


@dataclass(frozen=True)
class Exposure:
    """How one FFI is built from 2-s frames.

    Parameters
    ----------
    cadence : float
        FFI cadence [s].
    cosmic_ray_mitigation : bool
        Whether the on-board mitigation drops the highest and lowest of every block of
        ``CR_BLOCK_SIZE`` frames.
    """

    cadence: float
    cosmic_ray_mitigation: bool = True

    @property
    def num_frames(self) -> int:
        """Number of 2-s frames per cadence (NUM_FRM)."""
        return int(round(self.cadence / 2.0))

    @property
    def num_coadded(self) -> int:
        """Number of frames actually summed (NREADOUT)."""
        if self.cosmic_ray_mitigation:
            return self.num_frames * (CR_BLOCK_SIZE - 2) // CR_BLOCK_SIZE
        return self.num_frames

    @property
    def exposure_time(self) -> float:
        """Time on source [s] (EXPOSURE keyword, in days in headers)."""
        return self.num_coadded * INTEGRATION_TIME

    @property
    def deadc(self) -> float:
        """Dead-time correction factor: exposure time / cadence."""
        return self.exposure_time / (self.num_frames * 2.0)


def bleed(charge: np.ndarray, full_well: float = FULL_WELL) -> np.ndarray:
    """Spread charge above the full well along columns, conserving it.

    Every run of saturated pixels in a column is capped at ``full_well`` and its excess fills
    the pixels above and below in turn (half each way), outwards from the run, until it is
    absorbed; charge pushed past the array edge is lost (it left the region).

    Parameters
    ----------
    charge : ndarray, shape (ny, nx)
        Charge per pixel in one frame [e-].
    full_well : float
        Full-well depth [e-].

    Returns
    -------
    ndarray
        The charge after bleeding (a new array).
    """
    out = np.array(charge, dtype=np.float64, copy=True)
    over_cols = np.flatnonzero((out > full_well).any(axis=0))
    ny = out.shape[0]
    for c in over_cols:
        col = out[:, c]
        over = col > full_well
        # Runs of saturated pixels.
        edges = np.flatnonzero(np.diff(np.concatenate([[0], over.astype(int), [0]])))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            excess = float(np.sum(col[start:stop] - full_well))
            col[start:stop] = full_well
            up, down = excess / 2, excess / 2
            i = stop
            while up > 0 and i < ny:
                room = max(full_well - col[i], 0.0)
                take = min(room, up)
                col[i] += take
                up -= take
                i += 1
            i = start - 1
            while down > 0 and i >= 0:
                room = max(full_well - col[i], 0.0)
                take = min(room, down)
                col[i] += take
                down -= take
                i -= 1
        out[:, c] = col
    return out


def output_read_noise(read_noise: np.ndarray, ncols: int, col0: int) -> np.ndarray:
    """Read noise of each column of a region, from the per-output values (A, B, C, D)."""
    outputs = np.clip((col0 + np.arange(ncols)) // OUTPUT_WIDTH, 0, 3)
    return np.asarray(read_noise)[outputs]


def expose(
    rng: np.random.Generator,
    rate: np.ndarray,
    exposure: Exposure,
    read_noise_cols: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy calibrated image and its uncertainty from the true photon rate.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator.
    rate : ndarray, shape (ny, nx)
        True signal [e-/s] (stars after saturation, plus sky).
    exposure : Exposure
        Frame structure of the cadence.
    read_noise_cols : ndarray, shape (nx,)
        Read noise of each column [e- per frame].

    Returns
    -------
    image, uncertainty : ndarray (float32)
        Image [e-/s] with Poisson noise over the exposure and read noise of every co-added
        frame, and the 1-sigma uncertainty SPOC would give it [e-/s].
    """
    t = exposure.exposure_time
    electrons = np.clip(rate, 0.0, None) * t
    read_var = exposure.num_coadded * read_noise_cols[None, :] ** 2
    noisy = rng.poisson(electrons).astype(np.float64)
    noisy += rng.normal(0.0, 1.0, rate.shape) * np.sqrt(read_var)
    image = (noisy / t).astype(np.float32)
    uncertainty = (np.sqrt(electrons + read_var) / t).astype(np.float32)
    return image, uncertainty


def saturate(rate: np.ndarray, full_well: float = FULL_WELL) -> np.ndarray:
    """Apply saturation and bleeding to a rate image [e-/s] (per 2-s frame charge)."""
    charge = rate * INTEGRATION_TIME
    if not np.any(charge > full_well):
        return rate
    return bleed(charge, full_well) / INTEGRATION_TIME


def full_frame(
    rng: np.random.Generator,
    image: np.ndarray,
    uncert: np.ndarray,
    exposure: Exposure,
    read_noise: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Embed the science area in a 2078 x 2136 image with collateral pixels.

    Collateral and virtual pixels of calibrated FFIs hold the residual bias: zero mean with
    the read noise of their output.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator.
    image, uncert : numpy.ndarray
        The science area's image and uncertainty [e-/s].
    exposure : Exposure
        Frame structure of the cadence.
    read_noise : numpy.ndarray
        Read noise of the four outputs [e- per frame].

    Returns
    -------
    image, uncertainty : numpy.ndarray (float32)
        The full frames.
    """
    rn_level = np.asarray(read_noise) * np.sqrt(exposure.num_coadded) / exposure.exposure_time
    full = np.empty(FULL_FRAME_SHAPE, dtype=np.float32)
    full_unc = np.empty(FULL_FRAME_SHAPE, dtype=np.float32)
    sigma = np.full(FULL_FRAME_SHAPE[1], rn_level.mean())
    # Leading columns: 11 per output; trailing virtual columns likewise.
    for out in range(4):
        sigma[11 * out : 11 * (out + 1)] = rn_level[out]
        start = SCIENCE_COLUMN_OFFSET + SCIENCE_SIZE + 11 * out
        sigma[start : start + 11] = rn_level[out]
    full[:] = rng.normal(0.0, 1.0, FULL_FRAME_SHAPE) * sigma[None, :]
    full_unc[:] = sigma[None, :]
    sl = (
        slice(0, SCIENCE_SIZE),
        slice(SCIENCE_COLUMN_OFFSET, SCIENCE_COLUMN_OFFSET + SCIENCE_SIZE),
    )
    full[sl] = image
    full_unc[sl] = uncert
    return full, full_unc
