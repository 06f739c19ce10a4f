"""The prepared-data HDF5 file: its name, its errors, and its one reader (PreparedCube).

See docs/hdf5-format.md for the layout. :class:`PreparedCube` is the only code that decodes
the file (attributes, per-cadence arrays, the reference WCS, the motion model, blocks of the
cubes); the photometry's pixel sources, the todo list and the scheduler read through it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np
from astropy.wcs import WCS

from tessphot.io.errors import FileProblem
from tessphot.prepare import codec
from tessphot.prepare.background_surface import MeshSurface
from tessphot.prepare.layout import CHUNK_PIXELS, FORMAT_VERSION, QUANTISED
from tessphot.prepare.motion import MotionModel, wcs_from_string

__all__ = ["CHUNK_PIXELS", "CUBES", "FORMAT_VERSION", "PreparedCube", "PreparedDataError"]

#: The cubes a :class:`PreparedCube` reads: the stored ones and ``backgrounds`` (the
#: surface through the stored background mesh, evaluated on the stamp).
CUBES = ("images", "images_err", "backgrounds", "pixel_flags")
#: HDF5 chunk cache of each cube of a :class:`PreparedCube` [bytes]: decompressed chunks are
#: kept for the next stars, which read the same chunks when they are near (the parallel
#: runs' schedule hands neighbours to one worker in a row, tessphot.runner.schedule). A
#: 1300-cadence sector has 1.3 MiB of 32-bit chunks per 16x16-pixel tile: this holds about
#: 24 tiles, more than the 3x3 tiles around a star.
CHUNK_CACHE_BYTES = 32 * 2**20
#: Hash slots of the chunk cache (a prime about ten times the chunks it holds).
CHUNK_CACHE_SLOTS = 10_007
#: Chunk-cache eviction weight: 0 is plain least-recently-used (HDF5's default prefers to
#: evict chunks read whole, but a chunk read whole by one stamp is wanted by the next star).
CHUNK_CACHE_W0 = 0.0
#: A region whose stored cubes (``images``, ``images_err``, ``pixel_flags``) take at most
#: this many bytes together is read whole, each cube at its first stamp: a crop or a TESScut
#: cutout (a 200x200-px region of 1300 cadences takes 350 MiB). Its stars then cut their
#: stamps from memory, in whatever order they run (a serial run goes by priority, not by
#: place), instead of each asking HDF5 for the hundred-odd chunks of its stamps [bytes].
#: Larger regions are read stamp by stamp, through the chunk cache.
WHOLE_REGION_BYTES = 400 * 2**20


#: Names of prepared-data files: ``sectorNNN_cameraC_ccdD.hdf5`` for a CCD's FFIs,
#: ``sectorNNN_cameraC_ccdD_<tag>.hdf5`` for one TESScut cutout (the tag from its name).
PREPARED_NAME_PATTERN = re.compile(
    r"^sector(?P<sector>\d{3})_camera(?P<camera>[1-4])_ccd(?P<ccd>[1-4])(?:_(?P<tag>[^/]+))?"
    r"\.hdf5$"
)


def hdf5_name(sector: int, camera: int, ccd: int, tag: str | None = None) -> str:
    """File name of the prepared data of a sector, camera and CCD (``tag``: of a cutout)."""
    suffix = f"_{tag}" if tag else ""
    return f"sector{sector:03d}_camera{camera}_ccd{ccd}{suffix}.hdf5"


def prepared_files(folder: str | os.PathLike, sector: int, camera: int, ccd: int) -> list[Path]:
    """The prepared-data files of a sector, camera and CCD in a folder (top level).

    The CCD's own file comes first, then those of cutouts, by name.
    """
    found = []
    for path in Path(folder).glob(f"sector{sector:03d}_camera{camera}_ccd{ccd}*.hdf5"):
        match = PREPARED_NAME_PATTERN.match(path.name)
        if match and path.is_file():
            found.append((match["tag"] is not None, path.name, path))
    return [path for *_, path in sorted(found)]


class PreparedDataError(FileProblem, OSError):
    """A prepared-data file that is missing, incomplete or damaged.

    The message names the file, the problem and what to do (re-run ``tessphot prepare``).
    An :class:`OSError` too, for callers that handle unreadable files as such.
    """


#: HDF5's report of a file shorter than its superblock says (the sizes in bytes).
_TRUNCATED = re.compile(r"truncated file: eof = (?P<eof>\d+).*stored_eof = (?P<stored>\d+)")


def rerun_advice(path: str | os.PathLike) -> str:
    """What to do about an unusable prepared-data file: the prepare run that rebuilds it."""
    match = PREPARED_NAME_PATTERN.match(Path(path).name)
    selection = (
        f" --sector {int(match['sector'])} --camera {match['camera']} --ccd {match['ccd']}"
        if match
        else ""
    )
    return f"re-run 'tessphot prepare --overwrite{selection}' to rebuild it"


def damaged(path: str | os.PathLike, problem: str) -> PreparedDataError:
    """The error of a damaged prepared-data file: the problem and :func:`rerun_advice`."""
    return PreparedDataError(path, f"damaged prepared-data file ({problem}); {rerun_advice(path)}")


def open_prepared(path: Path, **cache) -> h5py.File:
    """Open a prepared-data file for reading; ``cache``: h5py's chunk-cache options.

    Raises
    ------
    PreparedDataError
        When the file is missing, truncated or not an HDF5 file.
    """
    if not path.is_file():
        raise PreparedDataError(path, "prepared data not found (run 'tessphot prepare' first)")
    try:
        return h5py.File(path, "r", **cache)
    except OSError as err:
        truncated = _TRUNCATED.search(str(err))
        if truncated:
            problem = f"truncated: {truncated['eof']} of {truncated['stored']} bytes"
        elif not h5py.is_hdf5(path):
            problem = "not an HDF5 file"
        else:
            problem = "cannot be opened"
        raise damaged(path, problem) from None


def is_complete(path: Path) -> bool:
    """Whether a prepared-data file exists and is complete (False when it does not exist).

    Raises
    ------
    PreparedDataError
        When the file exists but cannot be read.
    """
    if not path.exists():
        return False
    with open_prepared(path) as h5:
        try:
            return bool(h5.attrs.get("complete", False))
        except (OSError, KeyError, ValueError, TypeError):
            raise damaged(path, "cannot read its attributes") from None


class PreparedCube:
    """Read access to a prepared-data file, built for per-star stamps.

    Parameters
    ----------
    path : path
        The ``sectorNNN_cameraC_ccdD.hdf5`` file.

    Raises
    ------
    PreparedDataError
        When the file is missing, damaged or not complete; reading a damaged part of it
        later raises it too.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._h5 = open_prepared(
            self.path,
            rdcc_nbytes=CHUNK_CACHE_BYTES,
            rdcc_nslots=CHUNK_CACHE_SLOTS,
            rdcc_w0=CHUNK_CACHE_W0,
        )
        try:
            self._read_header()
        except BaseException:
            self._h5.close()
            raise

    def _read_header(self) -> None:
        """The attributes and the handles of the cubes (damage raises PreparedDataError)."""
        with self._reading("attributes"):
            attrs = dict(self._h5.attrs)
        version = attrs.get("format_version")
        if version is not None and version != FORMAT_VERSION and attrs.get("complete", False):
            raise PreparedDataError(
                self.path,
                f"prepared-data format version {version}, this tessphot reads version "
                f"{FORMAT_VERSION}; {rerun_advice(self.path)}",
            )
        if version != FORMAT_VERSION or not attrs.get("complete", False):
            raise PreparedDataError(
                self.path,
                f"not a complete tessphot prepared-data file; {rerun_advice(self.path)}",
            )
        with self._reading("attributes"):
            self.attrs = attrs
            self.origin = tuple(int(v) for v in attrs["origin"])
            self.shape = tuple(int(v) for v in attrs["shape"])
            self.settings = json.loads(attrs["settings"])
        with self._reading("the cubes"):
            # Held open: HDF5 keeps a dataset's chunk cache only while a handle to it is
            # open (every h5[name] of the same dataset then shares it).
            self._cubes = {name: self._h5[name] for name in CUBES if name in self._h5}
            images = self._cubes["images"].attrs
            self._quantised = images["encoding"] == QUANTISED
            self._block_frames = int(images["block_frames"])
            self._step = float(images["quantisation_step"])
            if self._quantised:
                self._dither = tuple(
                    self._h5[name][:] for name in ("dither_time", "dither_rows", "dither_cols")
                )
        stored = sum(cube.size * cube.dtype.itemsize for cube in self._cubes.values())
        #: The cubes read whole (None: the region is read stamp by stamp; a cube None: it
        #: could not be read whole, its stamps are read one by one).
        self._whole: dict[str, np.ndarray | None] | None = (
            {} if stored <= WHOLE_REGION_BYTES else None
        )
        self._errors_read: tuple[tuple, np.ndarray] | None = None
        self._background: tuple[MeshSurface, np.ndarray] | None = None

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """Turn a failed read of ``what`` into one :class:`PreparedDataError`."""
        try:
            yield
        except (OSError, KeyError, ValueError, TypeError) as err:
            if isinstance(err, PreparedDataError):
                raise
            raise damaged(self.path, f"cannot read {what}") from None

    def __enter__(self) -> PreparedCube:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._cubes.clear()
        if self._whole:
            self._whole.clear()
        self._h5.close()

    # -- decoded attributes --------------------------------------------------------------
    @property
    def sector(self) -> int:
        """Sector of the data."""
        return int(self.attrs["sector"])

    @property
    def camera(self) -> int:
        """Camera of the data."""
        return int(self.attrs["camera"])

    @property
    def ccd(self) -> int:
        """CCD of the data."""
        return int(self.attrs["ccd"])

    @property
    def cadence(self) -> float:
        """Cadence of the frames [s]."""
        return float(self.attrs["cadence"])

    @property
    def data_rel(self) -> int:
        """SPOC data release of the frames."""
        return int(self.attrs["data_rel"])

    @property
    def reference_frame(self) -> int:
        """Index of the reference frame (its WCS places the catalog)."""
        return int(self.attrs["reference_frame"])

    @cached_property
    def reference_wcs(self) -> WCS | None:
        """The WCS of the reference frame (decoded once; None when it has none)."""
        with self._reading("the reference frame's WCS"):
            text = self._h5["wcs"][self.reference_frame]
        return wcs_from_string(text.decode() if isinstance(text, bytes) else str(text))

    def motion(self) -> MotionModel:
        """The image-motion model of the frames."""
        with self._reading("the motion model"):
            ds = self._h5["motion"]
            return MotionModel(ds[:], self._h5["time"][:], tuple(ds.attrs["centre"]))

    def _dataset(self, name: str) -> h5py.Dataset:
        with self._reading(f"'{name}'"):
            return self._cubes[name] if name in self._cubes else self._h5[name]

    def block(self, name: str, t0: int, t1: int, box: tuple[int, int, int, int]) -> np.ndarray:
        """Cadences ``t0:t1`` of a cube over a box ``(row_min, row_max, col_min, col_max)``.

        ``images`` and ``images_err`` as 32-bit floats (decoded), ``backgrounds`` evaluated
        from the stored mesh, ``pixel_flags`` as stored. The box is in science coordinates
        (half-open) and is not checked (see :meth:`stamp`).
        """
        if name == "backgrounds":
            return self._backgrounds(t0, t1, box)
        if name == "images_err":
            return self._errors(t0, t1, box).copy()  # the kept block stays as read
        if name == "images" and self._quantised:
            return self._images(t0, t1, box)
        return self._stored(name, t0, t1, box)

    def _whole_cube(self, name: str) -> np.ndarray | None:
        """The whole of a stored cube of a small region, read once (read-only); else None.

        A cube that cannot be read whole (a damaged chunk) is read stamp by stamp, which
        reports the damage for the stamps that reach it.
        """
        if self._whole is None or name not in self._cubes:
            return None
        if name not in self._whole:
            # Reopened without a chunk cache (closing the handle frees the one it had):
            # chunks read whole need none, and it would hold a copy of the last ones.
            del self._cubes[name]
            access = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
            access.set_chunk_cache(CHUNK_CACHE_SLOTS, 0, CHUNK_CACHE_W0)
            with self._reading(f"'{name}'"):
                self._cubes[name] = h5py.Dataset(
                    h5py.h5d.open(self._h5.id, name.encode(), dapl=access)
                )
            try:
                cube = self._cubes[name][()]
                cube.flags.writeable = False
            except (OSError, ValueError):
                cube = None
            self._whole[name] = cube
        return self._whole[name]

    def _stored(
        self, name: str, t0: int, t1: int, box: tuple[int, int, int, int], *, copy: bool = True
    ) -> np.ndarray:
        """Cadences ``t0:t1`` of a stored cube over a box, as stored.

        ``copy=False``: possibly a read-only view of the cube read whole (for callers that
        only decode it into new arrays).
        """
        r0, r1, c0, c1 = box
        orow, ocol = self.origin
        whole = self._whole_cube(name)
        if whole is not None:
            block = whole[t0:t1, r0 - orow : r1 - orow, c0 - ocol : c1 - ocol]
            return block.copy() if copy else block
        dataset = self._dataset(name)
        with self._reading(f"'{name}' at cadences {t0}-{t1 - 1}"):
            return dataset[t0:t1, r0 - orow : r1 - orow, c0 - ocol : c1 - ocol]

    def _errors(self, t0: int, t1: int, box: tuple[int, int, int, int]) -> np.ndarray:
        """The uncertainties of a block as 32-bit floats.

        The last block read is kept: the images of the same block decode with it.
        """
        key = (t0, t1, tuple(box))
        if self._errors_read is None or self._errors_read[0] != key:
            if self._quantised:
                # Half floats' bit patterns as differences within blocks of frames.
                first = t0 - t0 % self._block_frames
                stored = self._stored("images_err", first, t1, box, copy=False)
                bits = codec.from_differences(stored, self._block_frames)[t0 - first :]
                errors = codec.to_single(bits.view(np.float16))
            else:
                errors = self._stored("images_err", t0, t1, box)
            self._errors_read = (key, errors)
        return self._errors_read[1]

    def _images(self, t0: int, t1: int, box: tuple[int, int, int, int]) -> np.ndarray:
        """Decoded images of a block (:mod:`tessphot.prepare.codec`)."""
        first = t0 - t0 % self._block_frames
        stored = self._stored("images", first, t1, box, copy=False)
        codes = codec.from_differences(stored, self._block_frames)[t0 - first :]
        r0, r1, c0, c1 = box
        orow, ocol = self.origin
        times, rows, cols = self._dither
        plane = codec.dither_plane(rows[r0 - orow : r1 - orow], cols[c0 - ocol : c1 - ocol])
        u = codec.dither(times[t0:t1], plane)
        return codec.decode(codes, codec.steps(self._errors(t0, t1, box), self._step), u)

    def _backgrounds(self, t0: int, t1: int, box: tuple[int, int, int, int]) -> np.ndarray:
        """The background subtracted, over a block: the surface through the stored mesh."""
        if self._background is None:
            with self._reading("the background mesh"):
                mesh = self._h5["background_mesh"]
                centres = (mesh.attrs["centre_rows"], mesh.attrs["centre_cols"])
                surface = MeshSurface(self.shape, centres)
                # Frames without a mesh (excluded) have NaN coefficients: NaN backgrounds.
                self._background = (surface, surface.coefficients(mesh[:].astype(np.float64)))
        surface, coefficients = self._background
        r0, r1, c0, c1 = box
        orow, ocol = self.origin
        rows = np.arange(r0 - orow, r1 - orow, dtype=float)
        cols = np.arange(c0 - ocol, c1 - ocol, dtype=float)
        values = surface.evaluate_coefficients(coefficients[t0:t1], rows, cols)
        return values.astype(np.float32)

    def read(self, name: str) -> np.ndarray:
        """A whole cube (every cadence, the whole region), decoded as :meth:`block`."""
        box = (
            self.origin[0],
            self.origin[0] + self.shape[0],
            self.origin[1],
            self.origin[1] + self.shape[1],
        )
        return self.block(name, 0, self.n_cadences, box)

    def dataset_attrs(self, name: str) -> dict:
        """The attributes of a dataset (e.g. ``motion``: its model, source and stars)."""
        dataset = self._dataset(name)
        with self._reading(f"the attributes of '{name}'"):
            return dict(dataset.attrs)

    def array(self, name: str) -> np.ndarray:
        """A whole per-cadence array or image (time, cadenceno, quality, sumimage, ...).

        A cube (:data:`CUBES`) is read whole and decoded (:meth:`read`).
        """
        if name in CUBES:
            return self.read(name)
        dataset = self._dataset(name)
        with self._reading(f"'{name}'"):
            return dataset[()]

    def stamp(self, name: str, row_min: int, row_max: int, col_min: int, col_max: int):
        """A stamp of a cube over all cadences, shape (N, rows, cols).

        The bounds are science-area coordinates (half-open) and must lie on the region.
        """
        r0, c0 = row_min - self.origin[0], col_min - self.origin[1]
        r1, c1 = row_max - self.origin[0], col_max - self.origin[1]
        if r0 < 0 or c0 < 0 or r1 > self.shape[0] or c1 > self.shape[1] or r1 <= r0 or c1 <= c0:
            raise ValueError(
                f"stamp rows {row_min}:{row_max}, columns {col_min}:{col_max} is not on the "
                f"region of {self.path.name} (origin {self.origin}, shape {self.shape})"
            )
        return self.block(name, 0, self.n_cadences, (row_min, row_max, col_min, col_max))

    @property
    def n_cadences(self) -> int:
        """Number of cadences (frames) of the cubes."""
        return int(self._dataset("time").shape[0])

    def star_halos(self):
        """The stars' halos measured with the effective PRF (docs/hdf5-format.md).

        Returns
        -------
        tessphot.prf.star_halo.StarHalos or None
            None for a file without them.
        """
        from tessphot.prepare.effective_prf import read_star_halos

        with self._reading("the stars' halos"):
            return read_star_halos(self._h5)

    def effective_prf(self):
        """The effective PRF measured by the prepare stage (docs/hdf5-format.md).

        Returns
        -------
        tessphot.prf.effective.EffectivePRF or None
            None for a file without one (older files, or not measured).
        """
        from tessphot.prepare.effective_prf import read_effective_prf

        with self._reading("the effective PRF"):
            return read_effective_prf(self._h5)
