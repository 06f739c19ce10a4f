"""The pointing's motion blur of an average image, applied to PRF tables.

An average image holds each star at every position the pointing took it to: its image is
the PRF averaged over the frames' displacements, which widens it by the displacements'
spread (the real sector-1 pointing moves stars by 0.1-0.15 px rms over a few days: a 2 %
wider core, as large as the PRF differences an effective PRF measures). A PRF measured on
the average image without this would carry the blur into every frame's photometry.

:class:`MotionBlur` holds, for each node of a PRF model, the displacements of the frames
averaged (relative to their mean) and applies their average to tables exactly, in Fourier
space: ``T_blurred(d) = mean_k T(d - delta_k)``, the tables being samples at 1/9 px of a
smooth function. The displacements come from the prepare stage's motion model
(:func:`tessphot.prepare.effective_prf.motion_blur`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tessphot.prf.models import OVERSAMPLE, TABLE_SIZE, PRFModel

#: Displacements are grouped on a grid this fine before their average is taken [px]: far
#: below the tables' 1/9 px, it keeps the cost independent of the number of frames.
DISPLACEMENT_GRID = 1e-3
#: Extra table samples of zero padding on each side beyond the largest displacement.
PAD_SAMPLES = 4


@dataclass(frozen=True)
class MotionBlur:
    """The frames' displacements at each node of a PRF model (relative to their mean).

    Attributes
    ----------
    displacements : ndarray, shape (n_nodes, n, 2)
        Row and column displacement of each displacement group [px].
    weights : ndarray, shape (n_nodes, n)
        Fraction of the frames in each group (each node's sum is 1).
    """

    displacements: np.ndarray
    weights: np.ndarray

    @property
    def rms(self) -> np.ndarray:
        """Rms displacement per node, (n_nodes, 2) rows and columns [px]."""
        mean_square = np.einsum("nk,nkd->nd", self.weights, self.displacements**2)
        return np.sqrt(mean_square)

    @property
    def pad(self) -> int:
        """Zero samples added on each side of a table before its transform."""
        largest = float(np.max(np.abs(self.displacements), initial=0.0))
        return int(np.ceil(largest * OVERSAMPLE)) + PAD_SAMPLES

    @cached_property
    def kernels(self) -> np.ndarray:
        """Each node's average of the displacements' phase factors, (n_nodes, fy, fx)."""
        size = TABLE_SIZE + 2 * self.pad
        frequency = np.fft.fftfreq(size, d=1.0 / OVERSAMPLE)  # cycles per pixel
        rfrequency = np.fft.rfftfreq(size, d=1.0 / OVERSAMPLE)
        out = np.empty((self.weights.shape[0], size, rfrequency.size), dtype=complex)
        for n, (shifts, weights) in enumerate(zip(self.displacements, self.weights, strict=True)):
            phase_y = np.exp(-2j * np.pi * np.outer(shifts[:, 0], frequency))
            phase_x = np.exp(-2j * np.pi * np.outer(shifts[:, 1], rfrequency))
            out[n] = (weights[:, None] * phase_y).T @ phase_x
        return out

    def apply(self, tables: np.ndarray) -> np.ndarray:
        """The tables averaged over the displacements of their node.

        Parameters
        ----------
        tables : ndarray, shape (n_nodes, ..., TABLE_SIZE, TABLE_SIZE)

        Returns
        -------
        ndarray
            Same shape: each table ``mean_k T(d - delta_k)``.
        """
        tables = np.asarray(tables, dtype=float)
        if tables.shape[0] != self.weights.shape[0]:
            raise ValueError(f"{tables.shape[0]} nodes of tables, {self.weights.shape[0]} blurs")
        pad = self.pad
        size = TABLE_SIZE + 2 * pad
        width = [(0, 0)] * (tables.ndim - 3) + [(pad, pad), (pad, pad)]
        out = np.empty_like(tables)
        for n, kernel in enumerate(self.kernels):
            padded = np.pad(tables[n], width)
            blurred = np.fft.irfft2(np.fft.rfft2(padded) * kernel, s=(size, size))
            out[n] = blurred[..., pad : pad + TABLE_SIZE, pad : pad + TABLE_SIZE]
        return out

    def blurred(self, model: PRFModel) -> PRFModel:
        """The model with its tables blurred (same nodes and names)."""
        return PRFModel(
            self.apply(model.tables),
            model.node_rows,
            model.node_cols,
            model.name,
            model.short_name,
            taper=False,
        )


def from_displacements(shifts: np.ndarray) -> MotionBlur:
    """The blur of frames displaced by ``shifts``, (n_nodes, n_frames, 2) [px].

    The displacements are taken relative to their mean at each node (the average image's
    star sits at its mean position), grouped on a grid of :data:`DISPLACEMENT_GRID`.
    """
    shifts = np.asarray(shifts, dtype=float)
    shifts = shifts - shifts.mean(axis=1, keepdims=True)
    groups = [
        np.unique(np.round(s / DISPLACEMENT_GRID).astype(np.int64), axis=0, return_counts=True)
        for s in shifts
    ]
    n = max(g[0].shape[0] for g in groups)
    displacements = np.zeros((len(groups), n, 2))
    weights = np.zeros((len(groups), n))
    for i, (grid, counts) in enumerate(groups):
        displacements[i, : counts.size] = grid * DISPLACEMENT_GRID
        weights[i, : counts.size] = counts / counts.sum()
    return MotionBlur(displacements, weights)
