"""Find the frames of one sector, camera and CCD, check that they belong together, order them.

The frames are FFI files, or the cadences of a TESScut cube.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from tessphot.constants import FIRST_SCIENCE_CCD_COLUMN, FIRST_SCIENCE_CCD_ROW, SCIENCE_SIZE
from tessphot.io import FFIError, FFIImage, find_ffis, read_ffi
from tessphot.io.fits_headers import read_headers
from tessphot.io.tesscut import Cutout, TESScutError, read_cutout

log = logging.getLogger(__name__)


class FrameSetError(ValueError):
    """The FFIs of a CCD do not form one consistent set (duplicates, mixed releases...)."""


@dataclass
class FrameInfo:
    """What the header of one FFI says, read without its pixels.

    The values only, not the header: a sector's 1282 headers held ~100 MB.
    """

    path: Path
    tstart: float
    tstop: float
    barycorr: float
    cadenceno: int | None
    quality: int
    data_rel: int | None
    procver: str | None
    origin: tuple[int, int]
    shape: tuple[int, int]
    #: Cadence in a TESScut cube file (None: the file is one FFI).
    index: int | None = None

    @property
    def time(self) -> float:
        """Mid-exposure time [BTJD]."""
        return 0.5 * (self.tstart + self.tstop)


#: TESScut cubes kept in memory per process (a worker reads one cube's frames in turn).
_CUTOUT_CACHE: dict[str, Cutout] = {}


def load_frame(path: str | Path, index: int | None = None) -> FFIImage:
    """One frame: an FFI file, or cadence ``index`` of a TESScut cube (cached per process).

    Raises
    ------
    FFIError
        For an unreadable FFI or cube.
    """
    if index is None:
        return read_ffi(path)
    try:
        return _cutout(path).frame(index)
    except TESScutError as err:
        raise FFIError(err.path, err.problem) from None


def _cutout(path: str | Path) -> Cutout:
    """A TESScut cube, read once per process (the last one kept)."""
    key = str(path)
    cutout = _CUTOUT_CACHE.get(key)
    if cutout is None:
        cutout = read_cutout(path)
        _CUTOUT_CACHE.clear()
        _CUTOUT_CACHE[key] = cutout
    return cutout


def cutout_frames(path: Path) -> list[FrameInfo]:
    """The cadences of a TESScut cube as frames, in time order.

    Raises
    ------
    FrameSetError
        When the cube cannot be read or its cadences do not form a consistent set.
    """
    try:
        cutout = _cutout(path)
    except TESScutError as err:
        raise FrameSetError(str(err)) from None
    first = cutout.frame(0)
    half = cutout.cadence / 86400.0 / 2
    frames = [
        FrameInfo(
            path=Path(path),
            tstart=float(cutout.time[k] - half),
            tstop=float(cutout.time[k] + half),
            barycorr=float(cutout.timecorr[k]),
            cadenceno=int(cutout.cadenceno[k]),
            quality=int(cutout.quality[k]),
            data_rel=first.data_rel,
            procver=first.procver,
            origin=cutout.origin,
            shape=cutout.shape,
            index=k,
        )
        for k in range(cutout.time.size)
    ]
    frames.sort(key=lambda f: f.tstart)
    _check_consistent(frames)
    return frames


def _region(header: fits.Header) -> tuple[tuple[int, int], tuple[int, int]]:
    """Science-area origin and shape of the science pixels of an FFI image HDU."""
    col1 = int(header.get("CRVAL1P", 1)) + (1 - int(header.get("CRPIX1P", 1)))
    row1 = int(header.get("CRVAL2P", 1)) + (1 - int(header.get("CRPIX2P", 1)))
    nx, ny = int(header["NAXIS1"]), int(header["NAXIS2"])
    c0 = max(col1, FIRST_SCIENCE_CCD_COLUMN) - FIRST_SCIENCE_CCD_COLUMN
    r0 = max(row1, FIRST_SCIENCE_CCD_ROW) - FIRST_SCIENCE_CCD_ROW
    c1 = min(col1 + nx, FIRST_SCIENCE_CCD_COLUMN + SCIENCE_SIZE) - FIRST_SCIENCE_CCD_COLUMN
    r1 = min(row1 + ny, FIRST_SCIENCE_CCD_ROW + SCIENCE_SIZE) - FIRST_SCIENCE_CCD_ROW
    return (r0, c0), (r1 - r0, c1 - c0)


def read_frame_info(path: Path) -> FrameInfo:
    """Header information of one FFI; raises FFIError naming the file on bad input."""
    # The first two headers only: a gzipped FFI is decompressed no further than them.
    found = read_headers(path, max_hdus=2)
    if found.problem or len(found.headers) < 2:
        detail = found.detail or "it has no image extension"
        raise FFIError(path, f"cannot read the headers ({detail})")
    header, image_header = found.headers
    header = {**header, **image_header}
    try:
        origin, shape = _region(image_header)
        return FrameInfo(
            path=Path(path),
            tstart=float(header["TSTART"]),
            tstop=float(header["TSTOP"]),
            barycorr=float(header.get("BARYCORR", 0.0)),
            cadenceno=int(header["FFIINDEX"]) if "FFIINDEX" in header else None,
            quality=int(header.get("DQUALITY", 0)),
            data_rel=int(header["DATA_REL"]) if "DATA_REL" in header else None,
            procver=str(header["PROCVER"]).strip() if "PROCVER" in header else None,
            origin=origin,
            shape=shape,
        )
    except (KeyError, ValueError, TypeError) as err:
        raise FFIError(path, f"bad header ({err})") from None


def collect_frames(
    folder: Path, sector: int, camera: int, ccd: int
) -> tuple[list[FrameInfo], list[tuple[Path, str]]]:
    """The FFIs of one sector/camera/CCD below ``folder``, in time order.

    Returns
    -------
    frames : list of FrameInfo
        Readable frames, ordered by time.
    unreadable : list of (path, message)
        Files whose header could not be read (logged; they are left out).

    Raises
    ------
    FrameSetError
        When the frames do not belong together: duplicates, mixed data releases or
        processing versions, different regions of the CCD, or none at all.
    """
    frames, unreadable = [], []
    for path in find_ffis(folder, sector=sector, camera=camera, ccd=ccd):
        try:
            frames.append(read_frame_info(path))
        except (FFIError, OSError) as err:
            log.error("Unreadable FFI left out: %s", err)
            unreadable.append((path, str(err)))
    if not frames:
        raise FrameSetError(
            f"no readable FFIs of sector {sector} camera {camera} CCD {ccd} below {folder}"
        )
    frames.sort(key=lambda f: f.tstart)
    _check_consistent(frames)
    return frames, unreadable


def _check_consistent(frames: list[FrameInfo]) -> None:
    for key, label in (
        ("data_rel", "data releases"),
        ("procver", "processing versions"),
        ("origin", "CCD regions"),
        ("shape", "image sizes"),
    ):
        values = {getattr(f, key) for f in frames}
        if len(values) > 1:
            examples = {}
            for f in frames:
                examples.setdefault(getattr(f, key), f.path.name)
            listing = ", ".join(f"{v} ({name})" for v, name in examples.items())
            raise FrameSetError(f"FFIs of one CCD with different {label}: {listing}")
    starts = np.array([f.tstart for f in frames])
    same_time = np.flatnonzero(np.isclose(np.diff(starts), 0.0, atol=1e-6))
    index = [f.cadenceno for f in frames]
    duplicates = [(frames[i], frames[i + 1]) for i in same_time]
    if None not in index:
        seen: dict[int, FrameInfo] = {}
        for f in frames:
            if f.cadenceno in seen and (seen[f.cadenceno], f) not in duplicates:
                duplicates.append((seen[f.cadenceno], f))
            seen[f.cadenceno] = f
    if duplicates:
        a, b = duplicates[0]
        raise FrameSetError(
            f"{len(duplicates)} duplicate frame(s), e.g. {a.path} and {b.path} "
            f"(cadence {a.cadenceno}, TSTART {a.tstart:.6f}); remove one of each pair"
        )
