"""Download of the real SPOC PRF models from the MAST archive into a cache.

MAST serves the SPOC PRF models under :data:`PRF_URL`, one folder per epoch and CCD::

    start_s0001/camC_ccdD/tess2018243163600-prf-C-D-rowRRRR-colCCCC.fits   (sectors 1-3)
    start_s0004/camC_ccdD/tess2019107181901-prf-C-D-rowRRRR-colCCCC.fits   (sectors 4 on)

25 files per CCD on a 5x5 grid of CCD positions. The prefix of the names varies with the
camera, so the names are taken from the folder's HTML index (the links ending in
``prf-C-D-rowRRRR-colCCCC.fits``), not built.

:func:`download_prf` copies the files of one camera/CCD and epoch into a cache laid out like
tessphot's PRF folders, ``<cache>/Sectors1_2_3/camC_ccdD/<name>`` (and ``Sectors4+``), which
:class:`tessphot.prf.spoc.SpocPRF` reads unchanged. Every file is written atomically and checked
(a FITS file whose primary image is 117x117); files already in the cache are kept, so a
broken download resumes, and a complete cache is used without the network.
:func:`archive_prf_dir` is what the ``prf_dir`` value ``"archive"`` resolves to.
:class:`PRFArchive` says where: the settings ``[photometry] prf_url`` and ``prf_cache``,
else ``$TESSPHOT_PRF_URL`` and ``$TESSPHOT_PRF_CACHE``, else :data:`PRF_URL` and
``~/.cache/tessphot/prf`` (:mod:`tessphot.prf.cache`).
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import shutil
import urllib.parse
import urllib.request
import warnings
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

from astropy.io import fits

from tessphot.io.errors import TessphotError
from tessphot.logs import progress_bar
from tessphot.paths import atomic_path
from tessphot.prf.cache import (
    ARCHIVE,
    CACHE_ENV,
    PRF_URL,
    URL_ENV,
    PRFArchive,
    prf_epoch,
    spoc_prf_folder,
)
from tessphot.prf.models import TABLE_SIZE
from tessphot.version import __version__

__all__ = [
    "ARCHIVE_EPOCHS",
    "CACHE_ENV",
    "GRID_COLUMNS",
    "GRID_ROWS",
    "PRF_TIMEOUT",
    "PRF_URL",
    "URL_ENV",
    "PRFArchive",
    "PRFDownloadError",
    "archive_folder_url",
    "archive_prf_dir",
    "cache_complete",
    "download_prf",
    "list_prf_files",
    "prf_file_problem",
    "resolve_prf_dir",
]

log = logging.getLogger(__name__)

#: Seconds to wait for the archive (per request).
PRF_TIMEOUT = 60.0
#: The archive's sub-folder of each epoch of PRF models (tessphot's folder names as keys).
ARCHIVE_EPOCHS = {"Sectors1_2_3": "start_s0001", "Sectors4+": "start_s0004"}
#: CCD rows and columns of the 25 PRF models of a CCD (the file names' ``rowRRRR-colCCCC``).
GRID_ROWS = (1, 513, 1025, 1536, 2048)
GRID_COLUMNS = (45, 557, 1069, 1580, 2092)


class PRFDownloadError(TessphotError):
    """The SPOC PRF models could not be downloaded.

    The message names the URL, the problem and how to get the files by hand.
    """


def archive_folder_url(base_url: str, sector: int, camera: int, ccd: int) -> str:
    """URL of the archive's folder of the PRF models of a sector's epoch, camera and CCD."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    return f"{base}{ARCHIVE_EPOCHS[prf_epoch(sector)]}/cam{camera}_ccd{ccd}/"


def _name_pattern(camera: int, ccd: int) -> re.Pattern:
    return re.compile(rf"prf-{camera}-{ccd}-row(\d{{4}})-col(\d{{4}})\.fits$")


def _request(url: str) -> urllib.request.Request:
    return urllib.request.Request(url, headers={"User-Agent": f"tessphot/{__version__}"})


class _Links(HTMLParser):
    """The ``href`` of every link of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(value for key, value in attrs if key == "href" and value)


def _by_hand(folder_url: str, folder: Path, camera: int, ccd: int) -> str:
    return (
        f"Without network, download the 25 files *prf-{camera}-{ccd}-row*-col*.fits of "
        f"{folder_url} by hand into {folder}, or set prf_dir to a folder of PRF models laid "
        "out like Sectors1_2_3/camC_ccdD/ (or to 'analytic')"
    )


def list_prf_files(
    folder_url: str, camera: int, ccd: int, *, timeout: float = PRF_TIMEOUT
) -> dict[str, str]:
    """The PRF files of a camera and CCD linked from an archive folder's HTML index.

    Returns
    -------
    dict
        File name -> URL, sorted by name.

    Raises
    ------
    PRFDownloadError
        When the index cannot be read or links no complete grid of PRF files.
    """
    try:
        with urllib.request.urlopen(_request(folder_url), timeout=timeout) as response:  # noqa: S310
            charset = response.headers.get_content_charset() or "utf-8"
            page = response.read().decode(charset, errors="replace")
    except (OSError, http.client.HTTPException, ValueError) as err:
        raise PRFDownloadError(f"cannot read the archive's index {folder_url} ({err})") from None
    parser = _Links()
    parser.feed(page)
    pattern = _name_pattern(camera, ccd)
    files: dict[str, str] = {}
    positions = set()
    for href in parser.hrefs:
        url = urllib.parse.urljoin(folder_url, href)
        name = urllib.parse.unquote(PurePosixPath(urllib.parse.urlparse(url).path).name)
        match = pattern.search(name)
        if match and not name.startswith("."):
            files[name] = url
            positions.add((int(match[1]), int(match[2])))
    if not files:
        raise PRFDownloadError(
            f"{folder_url}: the index links no PRF files of camera {camera} CCD {ccd} "
            f"(*prf-{camera}-{ccd}-rowRRRR-colCCCC.fits)"
        )
    rows = sorted({r for r, _ in positions})
    cols = sorted({c for _, c in positions})
    missing = [(r, c) for r in rows for c in cols if (r, c) not in positions]
    if missing:
        raise PRFDownloadError(f"{folder_url}: the index lacks PRF files at (row, col) {missing}")
    return dict(sorted(files.items()))


def prf_file_problem(path: str | os.PathLike) -> str | None:
    """Why a file is not a usable SPOC PRF model (None when it is).

    It must be a complete FITS file whose primary image (the PRF) and HDU 1 (its
    uncertainties) are 117x117. (Requiring HDU 1 also catches a file cut short at the end
    of the primary HDU.)
    """
    try:
        with warnings.catch_warnings():
            # Astropy only warns about a truncated file.
            warnings.simplefilter("error")
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                shapes = [None if hdu.data is None else hdu.data.shape for hdu in hdul[:2]]
    except Exception as err:  # anything astropy raises on a broken file
        return f"not a readable FITS file ({type(err).__name__}: {err})"
    expected = (TABLE_SIZE, TABLE_SIZE)
    if shapes[0] != expected:
        return f"primary image has shape {shapes[0]}, expected {TABLE_SIZE}x{TABLE_SIZE}"
    if len(shapes) < 2 or shapes[1] != expected:
        found = "missing" if len(shapes) < 2 else f"of shape {shapes[1]}"
        return f"HDU 1 (the uncertainties) is {found}, expected a {TABLE_SIZE}x{TABLE_SIZE} image"
    return None


def _cached_positions(folder: Path, camera: int, ccd: int) -> set[tuple[int, int]]:
    pattern = _name_pattern(camera, ccd)
    found = set()
    for path in folder.glob("*prf*.fits") if folder.is_dir() else []:
        match = pattern.search(path.name)
        if match and not path.name.startswith("."):
            found.add((int(match[1]), int(match[2])))
    return found


def cache_complete(folder: str | os.PathLike, camera: int, ccd: int) -> bool:
    """Whether a folder holds the PRF models of every position of the 5x5 grid."""
    found = _cached_positions(Path(folder), camera, ccd)
    return all((r, c) in found for r in GRID_ROWS for c in GRID_COLUMNS)


def _download_file(url: str, target: Path, timeout: float) -> None:
    """Download one PRF file atomically into ``target``, checked."""
    with atomic_path(target, suffix=".part") as tmp:
        try:
            with (
                urllib.request.urlopen(_request(url), timeout=timeout) as response,  # noqa: S310
                open(tmp, "wb") as out,
            ):
                shutil.copyfileobj(response, out)
                expected = response.headers.get("Content-Length")
        except (OSError, http.client.HTTPException, ValueError) as err:
            raise PRFDownloadError(f"download of {url} failed ({err})") from None
        size = tmp.stat().st_size
        problem = None
        if expected is not None and expected.isdigit() and int(expected) != size:
            problem = f"truncated: received {size} of {int(expected)} bytes"
        problem = problem or prf_file_problem(tmp)
        if problem:
            raise PRFDownloadError(f"{url}: {problem}; the file was not kept")


def download_prf(
    sector: int,
    camera: int,
    ccd: int,
    cache_dir: str | os.PathLike,
    *,
    url: str | None = None,
    timeout: float = PRF_TIMEOUT,
    progress: bool = False,
) -> Path:
    """Download the SPOC PRF models of a sector's epoch, camera and CCD into a cache.

    The files are written as ``<cache_dir>/Sectors1_2_3/camC_ccdD/<archive name>`` (or
    ``Sectors4+``), each atomically and checked; files already there are kept. A folder
    holding the whole 5x5 grid is returned without asking the archive.

    Parameters
    ----------
    sector, camera, ccd : int
    cache_dir : path-like
        The cache (the ``prf_dir`` to read the models from afterwards).
    url : str, optional
        The archive's folder of PRF models (default :meth:`PRFArchive.base_url`).
    timeout : float
        Seconds to wait for each answer.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        The folder of the camera's and CCD's files.

    Raises
    ------
    PRFDownloadError
        When the archive cannot be reached or a file is not a usable PRF model (the
        message names the URL and says how to get the files by hand).
    """
    folder = spoc_prf_folder(cache_dir, sector, camera, ccd)
    if cache_complete(folder, camera, ccd):
        log.debug("SPOC PRF models of camera %d CCD %d found in %s", camera, ccd, folder)
        return folder
    folder_url = archive_folder_url(PRFArchive(url=url).base_url(), sector, camera, ccd)
    try:
        files = list_prf_files(folder_url, camera, ccd, timeout=timeout)
        missing = {name: u for name, u in files.items() if not (folder / name).is_file()}
        log.info(
            "Downloading %d of %d SPOC PRF models (%s, camera %d, CCD %d) from %s into %s",
            len(missing),
            len(files),
            folder.parent.name,
            camera,
            ccd,
            folder_url,
            folder,
        )
        bar = progress_bar(
            missing.items(),
            total=len(missing),
            desc=f"PRF cam{camera} ccd{ccd}",
            unit="file",
            enabled=progress,
        )
        for name, file_url in bar:
            _download_file(file_url, folder / name, timeout)
    except PRFDownloadError as err:
        raise PRFDownloadError(
            f"SPOC PRF models not downloaded: {err}. {_by_hand(folder_url, folder, camera, ccd)}"
        ) from None
    log.info("SPOC PRF models of camera %d CCD %d in %s", camera, ccd, folder)
    return folder


def archive_prf_dir(
    sector: int,
    camera: int,
    ccd: int,
    *,
    cache_dir: str | os.PathLike | None = None,
    url: str | None = None,
    progress: bool = False,
) -> Path:
    """The ``prf_dir`` that ``"archive"`` stands for, with the models of a sector's CCD.

    That is the cache, holding the SPOC PRF models of the sector's epoch, camera and CCD
    (downloaded first when missing).

    Raises
    ------
    PRFDownloadError
        When they are missing and cannot be downloaded.
    """
    archive = PRFArchive(url=url, cache_dir=cache_dir)
    root = archive.cache()
    download_prf(sector, camera, ccd, root, url=archive.base_url(), progress=progress)
    return root


def resolve_prf_dir(
    prf_dir: str | os.PathLike | None,
    sector: int,
    camera: int,
    ccd: int,
    *,
    cache_dir: str | os.PathLike | None = None,
    url: str | None = None,
    progress: bool = False,
) -> str | None:
    """A ``prf_dir`` setting with ``"archive"`` replaced by the cache folder.

    The models are downloaded first when missing; other values are returned unchanged.
    """
    if prf_dir is not None and str(prf_dir) == ARCHIVE:
        root = archive_prf_dir(sector, camera, ccd, cache_dir=cache_dir, url=url, progress=progress)
        return str(root)
    return None if prf_dir is None else str(prf_dir)
