"""Write simulated frames as SPOC calibrated FFIs (primary + image + uncertainty HDUs).

Headers start from the cards of a real SPOC FFI (sector 1, camera 1, CCD 4, shipped as
``data/ffi_header_*.txt``) and get the values of the simulated frame.
"""

from __future__ import annotations

import datetime
import gzip
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from tessphot.paths import atomic_path
from tessphot.version import PIPELINE_NAME, __version__

#: gzip level for .fits.gz output (1 is ~5x faster than 9 and nearly as small on noisy data).
GZIP_LEVEL = 1
#: Keywords describing a WCS, removed from the template before the frame's WCS is written.
_WCS_KEY = re.compile(
    r"^(WCSAXES|CTYPE[12]|CUNIT[12]|CRVAL[12]|CRPIX[12]|CDELT[12]|CD[12]_[12]|PC[12]_[12]|"
    r"[AB]P?_\d+_\d+|[AB]P?_ORDER|[AB]_DMAX|LONPOLE|LATPOLE|MJDREF|MJD-OBS|DATEREF)$"
)


def _template(name: str) -> fits.Header:
    text = resources.files("tessphot.data").joinpath(f"ffi_header_{name}.txt").read_text()
    return fits.Header.fromstring(text, sep="\n")


TEMPLATES = {name: _template(name) for name in ("primary", "image", "uncert")}


@dataclass
class FrameInfo:
    """Everything that goes into the headers of one simulated FFI."""

    sector: int
    camera: int
    ccd: int
    ffiindex: int
    quality: int
    #: Exposure start/stop as stamped [TJD, spacecraft clock] and the barycentric correction [d].
    tstart_tjd: float
    tstop_tjd: float
    barycorr: float
    date_obs: str
    date_end: str
    #: WCS of the written image HDU (HDU pixel coordinates).
    wcs: WCS
    #: 1-based CCD column and row of the image HDU's first pixel.
    crval1p: int
    crval2p: int
    exposure_days: float
    deadc: float
    num_frm: int
    nreadout: int
    timedel: float
    gains: tuple[float, float, float, float]
    read_noise: tuple[float, float, float, float]
    data_rel: int
    pointing: tuple[float, float, float]
    btc_pix: tuple[float, float]
    #: Extra simulation keywords (name -> (value, comment)).
    extra: dict


def build_headers(info: FrameInfo) -> tuple[fits.Header, fits.Header, fits.Header]:
    """Primary, image and uncertainty headers of one frame."""
    today = datetime.date.today().isoformat()
    primary = TEMPLATES["primary"].copy()
    primary.update(
        {
            "ORIGIN": (PIPELINE_NAME, "institution responsible for creating this file"),
            "DATE": today,
            "SIMDATA": (True, "file is based on simulated data"),
            "TSTART": info.tstart_tjd,
            "TSTOP": info.tstop_tjd,
            "DATE-OBS": info.date_obs,
            "DATE-END": info.date_end,
            "CREATOR": (f"{PIPELINE_NAME} simulate", "program used to produce this file"),
            "PROCVER": (f"{PIPELINE_NAME}-{__version__}", "SW version"),
            "DATA_REL": info.data_rel,
        }
    )
    primary.set("SECTOR", info.sector, "Observing sector", after="DATA_REL")
    primary.set("CAMERA", info.camera, "Camera number", after="SECTOR")
    primary.set("CCD", info.ccd, "CCD chip number", after="CAMERA")
    primary.set("FFIINDEX", info.ffiindex, "number of FFI cadence interval", after="CCD")

    image = TEMPLATES["image"].copy()
    for key in [k for k in image if _WCS_KEY.match(k)]:
        del image[key]
    barycentric = {
        "TSTART": info.tstart_tjd + info.barycorr,
        "TSTOP": info.tstop_tjd + info.barycorr,
    }
    telapse = info.tstop_tjd - info.tstart_tjd
    image.update(
        {
            "SIMDATA": True,
            "CAMERA": info.camera,
            "CCD": info.ccd,
            "EXPOSURE": info.exposure_days,
            "TELAPSE": telapse,
            "LIVETIME": telapse * info.deadc,
            "DEADC": info.deadc,
            "DATE-OBS": info.date_obs,
            "DATE-END": info.date_end,
            "BARYCORR": info.barycorr,
            "BTC_PIX1": info.btc_pix[1],
            "BTC_PIX2": info.btc_pix[0],
            "NUM_FRM": info.num_frm,
            "NREADOUT": info.nreadout,
            "TIMEDEL": info.timedel,
            "CRVAL1P": info.crval1p,
            "CRVAL2P": info.crval2p,
            "RA_NOM": info.pointing[0],
            "DEC_NOM": info.pointing[1],
            "ROLL_NOM": info.pointing[2],
            "DQUALITY": info.quality,
            **barycentric,
        }
    )
    for out, gain, noise in zip("ABCD", info.gains, info.read_noise, strict=True):
        image[f"GAIN{out}"] = gain
        image[f"READNOI{out}"] = noise
    wcs_header = info.wcs.to_header(relax=True)
    for key in ("MJDREF", "MJD-OBS", "DATEREF", "LONPOLE", "LATPOLE"):
        wcs_header.remove(key, ignore_missing=True)
    image.update(wcs_header)
    for key, (value, comment) in info.extra.items():
        image[key] = (value, comment)

    uncert = image.copy()
    uncert["EXTNAME"] = f"CAMERA.CCD {info.camera}.{info.ccd} uncert"
    uncert["IMAGTYPE"] = "uncert"
    image["EXTNAME"] = f"CAMERA.CCD {info.camera}.{info.ccd} cal"
    return primary, image, uncert


def ffi_filename(info: FrameInfo, compress: bool) -> str:
    """Real-style file name ``tessYYYYDDDHHMMSS-sSSSS-C-D-0120-s_ffic.fits[.gz]``."""
    stamp = datetime.datetime.fromisoformat(info.date_obs.rstrip("Z"))
    name = (
        f"tess{stamp:%Y}{stamp.timetuple().tm_yday:03d}{stamp:%H%M%S}"
        f"-s{info.sector:04d}-{info.camera}-{info.ccd}-0120-s_ffic.fits"
    )
    return name + (".gz" if compress else "")


def write_atomic(hdul: fits.HDUList, path: Path, compress: bool) -> None:
    """Write a FITS file through a temporary file in the same folder, then rename it."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as raw:
            if compress:
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL) as gz:
                    hdul.writeto(gz, checksum=True)
            else:
                hdul.writeto(raw, checksum=True)


def write_ffi(
    folder: Path, info: FrameInfo, image: np.ndarray, uncertainty: np.ndarray, compress: bool
) -> Path:
    """Write one FFI and return its path."""
    primary, image_header, uncert_header = build_headers(info)
    hdul = fits.HDUList(
        [
            fits.PrimaryHDU(header=primary),
            fits.ImageHDU(np.asarray(image, dtype=np.float32), header=image_header),
            fits.ImageHDU(np.asarray(uncertainty, dtype=np.float32), header=uncert_header),
        ]
    )
    path = Path(folder) / ffi_filename(info, compress)
    write_atomic(hdul, path, compress)
    return path
