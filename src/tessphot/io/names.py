"""What the file names of SPOC target pixel files and TESScut cutouts say.

Names are only a fast path: :mod:`tessphot.io.recognise` trusts a name only where it agrees
with the file's headers.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

__all__ = [
    "ALERT_NAME_PATTERN",
    "CUTOUT_NAME_PATTERN",
    "CutoutName",
    "TASOC_LIGHTCURVE_PATTERN",
    "TPFName",
    "TPF_NAME_PATTERN",
    "parse_cutout_name",
    "parse_tpf_name",
]

#: SPOC TPF names: ``tess<timestamp>-s<sector>-<TIC>-<config>-<origin>_tp.fits[.gz]`` (120 s)
#: or ``..._fast-tp.fits[.gz]`` (20 s).
TPF_NAME_PATTERN = re.compile(
    r"tess(?P<timestamp>\d+)-s(?P<sector>\d{4})-(?P<starid>\d+)-\d{4}-[xsab]"
    r"_(?P<fast>fast-)?tp\.fits(?:\.gz)?"
)
#: Data-alert TPF names (120 s):
#: ``hlsp_tess-data-alerts_tess_phot_<TIC>-s<sector>_tess_v<n>_tp.fits``.
ALERT_NAME_PATTERN = re.compile(
    r"hlsp_tess-data-alerts_tess_phot_(?P<starid>\d+)-s(?P<sector>\d{2,4})_tess_v\d+_tp"
    r"\.fits(?:\.gz)?"
)
#: File names of TESScut cutouts.
CUTOUT_NAME_PATTERN = re.compile(
    r"tess-s(?P<sector>\d{4})-(?P<camera>[1-4])-(?P<ccd>[1-4])_(?P<ra>[-+]?\d+(?:\.\d*)?)_"
    r"(?P<dec>[-+]?\d+(?:\.\d*)?)_(?P<size>\d+x\d+)_astrocut\.fits(?:\.gz)?"
)
#: File names of TASOC-format light curves (tessphot's own output among them).
TASOC_LIGHTCURVE_PATTERN = re.compile(r".*-tasoc_lc\.fits(?:\.gz)?")
#: Cadence of ``*_tp`` and ``*_fast-tp`` files [s].
SLOW_CADENCE, FAST_CADENCE = 120, 20


class TPFName(NamedTuple):
    """What a TPF's file name says: TIC, sector and cadence [s]."""

    starid: int
    sector: int
    cadence: int


class CutoutName(NamedTuple):
    """What a cutout's file name (or its headers) say."""

    sector: int
    camera: int
    ccd: int
    ra: float
    dec: float
    #: ``<RA>_<Dec>_<W>x<H>``: names the cutout's prepared-data file.
    tag: str


def parse_tpf_name(name: str | os.PathLike[str]) -> TPFName | None:
    """Parse a TPF file name (SPOC or data-alert); None when it is not one."""
    base = os.path.basename(os.fspath(name))
    match = TPF_NAME_PATTERN.fullmatch(base)
    if match is not None:
        cadence = FAST_CADENCE if match["fast"] else SLOW_CADENCE
        return TPFName(int(match["starid"]), int(match["sector"]), cadence)
    match = ALERT_NAME_PATTERN.fullmatch(base)
    if match is not None:
        return TPFName(int(match["starid"]), int(match["sector"]), SLOW_CADENCE)
    return None


def parse_cutout_name(name: str | os.PathLike[str]) -> CutoutName | None:
    """Parse a TESScut file name; None when it is not one."""
    match = CUTOUT_NAME_PATTERN.fullmatch(os.path.basename(os.fspath(name)))
    if match is None:
        return None
    return CutoutName(
        int(match["sector"]),
        int(match["camera"]),
        int(match["ccd"]),
        float(match["ra"]),
        float(match["dec"]),
        f"{match['ra']}_{match['dec']}_{match['size']}",
    )
