"""The prepared file while it is written: ``<name>.hdf5.part``, started or resumed.

A run writes into ``<name>.hdf5.part`` and renames it when complete. A new part file gets
the layout (:func:`tessphot.prepare.cube.create_layout`), the attributes of the run and the
per-frame times and quality; a part file left by a killed run with the same frames,
settings and reference stars is resumed after its last written block.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from tessphot.config.prepare import StorageSettings
from tessphot.prepare import background as bg
from tessphot.prepare.frames import FrameInfo
from tessphot.prepare.layout import PAGE_BYTES, create_layout

log = logging.getLogger(__name__)

#: Header keywords of the first frame copied into the file's attributes (lower case).
COPIED_KEYWORDS = ("NUM_FRM", "NREADOUT", "CRMITEN", "CRBLKSZ", "CRSPOC")


def resume_point(part: Path, n: int, shape: tuple[int, int], settings: dict, n_ref: int) -> int:
    """The first frame still to write into ``part``; 0 (and no part file) to start anew.

    A part file is resumed when it has the same number of frames, region shape, settings
    and number of reference stars; any other part file is deleted.

    Parameters
    ----------
    part : pathlib.Path
        The part file (it need not exist).
    n : int
        Number of frames.
    shape : tuple of int
        Shape of the region.
    settings : dict
        The settings recorded in the file.
    n_ref : int
        Number of reference stars.
    """
    start = 0
    if part.exists():
        try:
            with h5py.File(part, "r") as h5:
                same = (
                    h5.attrs.get("n_frames") == n
                    and tuple(h5.attrs["shape"]) == shape
                    and json.loads(h5.attrs["settings"]) == settings
                    and h5["centroids"].shape[1] == n_ref
                )
                start = int(h5.attrs.get("frames_done", 0)) if same else 0
        except (OSError, KeyError):
            start = 0
        if start == 0:
            part.unlink()
        else:
            log.info("Resuming %s after %d of %d frames", part.name, start, n)
    return start


def start_part(
    part: Path,
    attrs: dict[str, Any],
    *,
    first,
    frames: list[FrameInfo],
    errors: dict[str, float],
    quality: np.ndarray,
    geometry: bg.MeshGeometry,
    n_ref: int,
    unreadable: list,
    storage: StorageSettings,
) -> None:
    """Create the part file: layout, attributes, per-frame times and quality.

    Parameters
    ----------
    part : pathlib.Path
        The file to create.
    attrs : dict
        The run's attributes (``shape``, ``n_frames``, ...).
    first : tessphot.io.FFIImage
        The first frame (its header gives the readout attributes).
    frames : list of FrameInfo
        All frames, in time order.
    errors : dict
        Time-stamp errors at ``start``, ``mid`` and ``end`` of the exposures [d].
    quality : numpy.ndarray
        Quality flags transferred from the TPFs, per frame.
    geometry : MeshGeometry
        The background mesh.
    n_ref : int
        Number of reference stars.
    unreadable : list of (path, reason)
        The files left out.
    storage : StorageSettings
        How the images are stored.
    """
    with h5py.File(part, "w", fs_strategy="page", fs_page_size=PAGE_BYTES) as h5:
        create_layout(h5, attrs["n_frames"], attrs["shape"], geometry.mesh_shape, n_ref, storage)
        for name in ("background_mesh", "background_frame_mesh"):
            mesh_attrs = h5[name].attrs
            mesh_attrs["box_size"] = [b * geometry.binning for b in geometry.binned_box]
            mesh_attrs["centre_rows"], mesh_attrs["centre_cols"] = geometry.centres
        h5.attrs.update(attrs)
        for key in COPIED_KEYWORDS:
            h5.attrs[key.lower()] = first.header.get(key, -1)
        h5.attrs["exposure_time"] = (first.exposure or 0.0) * 86400.0
        h5.attrs["gain"] = [first.header.get(f"GAIN{o}", np.nan) for o in "ABCD"]
        h5.attrs["read_noise"] = [first.header.get(f"READNOI{o}", np.nan) for o in "ABCD"]
        h5.attrs["unreadable_files"] = json.dumps([str(p) for p, _ in unreadable])
        h5["imagespaths"][:] = [f.path.name for f in frames]
        h5["time_start"][:] = [f.tstart - errors["start"] for f in frames]
        h5["time_stop"][:] = [f.tstop - errors["end"] for f in frames]
        h5["time"][:] = [f.time - errors["mid"] for f in frames]
        h5["timecorr"][:] = [f.barycorr for f in frames]
        h5["cadenceno"][:] = [
            f.cadenceno if f.cadenceno is not None else k + 1 for k, f in enumerate(frames)
        ]
        h5["quality"][:] = np.array([f.quality for f in frames]) | quality
