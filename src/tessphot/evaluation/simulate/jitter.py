"""Pointing jitter per cadence: translation (rows, columns) and rotation of the image.

Two sources:

- ``random``: an Ornstein-Uhlenbeck random walk of a few hundredths of a pixel per axis and
  a tiny roll, plus a jump of 0.1-0.5 px at every momentum dump that persists afterwards;
- ``sector1``: the real sector-1 spacecraft attitude (``TessVectors_S001_C{camera}_FFI.xz``,
  median delta-quaternion per FFI cadence), converted to pixels with the pixel scale.
"""

from __future__ import annotations

import lzma
from pathlib import Path

import numpy as np

from tessphot.constants import PIXEL_SCALE_ARCSEC

#: Stationary rms of the translation random walk [px] and its correlation time [cadences].
WALK_RMS = 0.02
WALK_CORRELATION = 12.0
#: Stationary rms of the roll random walk [rad] (1e-5 rad moves a corner pixel ~0.015 px).
ROLL_RMS = 1.0e-5
#: Size range of the pointing jump at a momentum dump [px].
DUMP_JUMP = (0.1, 0.5)

_RAD_TO_PX = np.degrees(1.0) * 3600.0 / PIXEL_SCALE_ARCSEC


def _ou(rng: np.random.Generator, n: int, rms: float, corr: float) -> np.ndarray:
    """Ornstein-Uhlenbeck series with stationary rms ``rms`` and correlation time ``corr``."""
    a = np.exp(-1.0 / corr)
    steps = rng.normal(0.0, rms * np.sqrt(1 - a**2), n)
    out = np.empty(n)
    x = rng.normal(0.0, rms)
    for i in range(n):
        x = a * x + steps[i]
        out[i] = x
    return out


def random_jitter(rng: np.random.Generator, n: int, dumps: np.ndarray) -> np.ndarray:
    """Random-walk jitter with jumps at momentum dumps.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator.
    n : int
        Number of cadences.
    dumps : ndarray of bool, shape (n,)
        Cadences during which a momentum dump happens.

    Returns
    -------
    ndarray, shape (n, 3)
        Per cadence: row shift [px], column shift [px], rotation [rad].
    """
    out = np.empty((n, 3))
    out[:, 0] = _ou(rng, n, WALK_RMS, WALK_CORRELATION)
    out[:, 1] = _ou(rng, n, WALK_RMS, WALK_CORRELATION)
    out[:, 2] = _ou(rng, n, ROLL_RMS, WALK_CORRELATION)
    for i in np.flatnonzero(dumps):
        size = rng.uniform(*DUMP_JUMP)
        angle = rng.uniform(0, 2 * np.pi)
        # The dump cadence itself is smeared: half the jump; later cadences get all of it.
        out[i, :2] += 0.5 * size * np.array([np.sin(angle), np.cos(angle)])
        out[i + 1 :, :2] += size * np.array([np.sin(angle), np.cos(angle)])
    return out


def read_tess_vectors(path: Path | str) -> dict[str, np.ndarray]:
    """Read a ``TessVectors_*.xz`` file (CSV with a ``#`` comment header) into columns."""
    path = Path(path)
    with lzma.open(path, "rt") as f:
        lines = [line for line in f if not line.startswith("#")]
    names = lines[0].strip().split(",")
    data = np.genfromtxt(lines[1:], delimiter=",")
    return {name: data[:, i] for i, name in enumerate(names)}


def sector1_jitter(vectors_dir: Path | str, camera: int, n: int) -> np.ndarray:
    """Jitter from the real sector-1 attitude of one camera, cycled to ``n`` cadences.

    The delta-quaternion components q1, q2, q3 are small rotations (angle = 2 q) about the
    camera axes; q1 and q2 move the image along the columns and rows, q3 rolls it.
    """
    path = Path(vectors_dir) / f"TessVectors_S001_C{camera}_FFI.xz"
    cols = read_tess_vectors(path)
    q = np.stack([cols["Quat1_Med"], cols["Quat2_Med"], cols["Quat3_Med"]], axis=1)
    q = q[np.all(np.isfinite(q), axis=1)]
    q = q - np.median(q, axis=0)
    idx = np.arange(n) % q.shape[0]
    out = np.empty((n, 3))
    out[:, 0] = 2 * q[idx, 1] * _RAD_TO_PX
    out[:, 1] = 2 * q[idx, 0] * _RAD_TO_PX
    out[:, 2] = 2 * q[idx, 2]
    return out
