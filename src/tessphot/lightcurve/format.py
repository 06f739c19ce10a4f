"""The TASOC light-curve format: its constants, columns, APERTURE bits and header records."""

from __future__ import annotations

from dataclasses import dataclass

from tessphot.constants import (
    BTJD_OFFSET,
    CR_BLOCK_SIZE,
    FRAME_TIME,
    INTEGRATION_TIME,
)
from tessphot.version import PIPELINE_NAME, __version__

#: Version of the file layout.
FILEVER = "1.5"
#: Value of ``ORIGIN``.
ORIGIN = PIPELINE_NAME
#: Value of ``PROCVER``.
PROCVER = f"{PIPELINE_NAME}-{__version__}"
#: Seconds per day.
SECONDS_PER_DAY = 86400.0
#: Integer part of the BTJD reference date (BJD - BTJD) [d].
BJDREFI = int(BTJD_OFFSET)
#: Offset between JD and MJD [d].
MJD_OFFSET = 2400000.5
#: Frames discarded per cosmic-ray mitigation block (the highest and the lowest).
CR_DISCARDED_PER_BLOCK = 2
#: Prefix of the HISTORY cards recording the settings.
SETTINGS_HISTORY_PREFIX = "tessphot setting "
#: Prefix of the HISTORY cards continuing a long setting.
SETTINGS_CONTINUATION_PREFIX = "tessphot setting+ "
#: Longest text of one HISTORY card.
_HISTORY_LENGTH = 72

#: The LIGHTCURVE columns: (name, TFORM, TDISP, TUNIT), exactly as in TASOC's files.
LIGHTCURVE_COLUMNS = (
    ("TIME", "D", "D14.7", "BJD - 2457000, days"),
    ("TIMECORR", "E", "E13.6", "d"),
    ("CADENCENO", "J", "I10", None),
    ("FLUX_RAW", "D", "E26.17", "e-/s"),
    ("FLUX_RAW_ERR", "D", "E26.17", "e-/s"),
    ("FLUX_BKG", "D", "E26.17", "e-/s"),
    ("FLUX_CORR", "D", "E26.17", "ppm"),
    ("FLUX_CORR_ERR", "D", "E26.17", "ppm"),
    ("QUALITY", "J", "B16.16", None),
    ("PIXEL_QUALITY", "J", "B16.16", None),
    ("MOM_CENTR1", "D", "F10.5", "pixels"),
    ("MOM_CENTR2", "D", "F10.5", "pixels"),
    ("POS_CORR1", "D", "F14.7", "pixels"),
    ("POS_CORR2", "D", "F14.7", "pixels"),
)


class ApertureBits:
    """Bits of the ``APERTURE`` image (§4.5 of the notes)."""

    #: Pixel collected (FFI: finite sum image).
    COLLECTED = 1
    #: Pixel in the photometric mask.
    PHOTOMETRIC = 2
    #: Pixel used for the background estimate.
    BACKGROUND = 4
    #: Pixel in the position (centroid) mask.
    CENTROID = 8
    #: CCD outputs A, B, C, D (by science column, :data:`OUTPUT_WIDTH` columns each).
    OUTPUTS = (32, 64, 128, 256)


@dataclass(frozen=True)
class TargetInfo:
    """The target, from the catalog.

    Attributes
    ----------
    starid : int
        TIC number.
    ra, dec : float
        J2000 (catalog epoch) right ascension and declination [deg].
    tmag : float
        TESS magnitude.
    pm_ra, pm_dec : float or None
        Proper motion [mas/yr]; ``pm_ra`` includes cos(dec).
    teff : float or None
        Effective temperature [K].
    ticver : str, int or None
        Version of the TESS Input Catalog.
    """

    starid: int
    ra: float
    dec: float
    tmag: float
    pm_ra: float | None = None
    pm_dec: float | None = None
    teff: float | None = None
    ticver: str | int | None = None


@dataclass(frozen=True)
class ObservationInfo:
    """Sector, detector and exposure structure of the data.

    Attributes
    ----------
    sector, camera, ccd : int
    cadence : float
        Time between two cadences [s] (1800, 600, 200 for FFIs; 120, 20 for TPFs).
    data_rel : int
        SPOC data release of the input data.
    crmiten : bool
        Spacecraft cosmic-ray mitigation enabled.
    crblksz : int
        Cosmic-ray mitigation block size [frames].
    crspoc : bool
        SPOC cosmic-ray cleaning enabled.
    num_frm : int or None
        Frames per cadence; None: ``cadence / FRAME_TIME``.
    nreadout : int or None
        Frames co-added per cadence; None: ``num_frm`` less the frames dropped by the
        cosmic-ray mitigation.
    """

    sector: int
    camera: int
    ccd: int
    cadence: float
    data_rel: int
    crmiten: bool = True
    crblksz: int = CR_BLOCK_SIZE
    crspoc: bool = False
    num_frm: int | None = None
    nreadout: int | None = None

    @property
    def frames(self) -> int:
        """Frames per cadence (``NUM_FRM``)."""
        if self.num_frm is not None:
            return int(self.num_frm)
        return round(self.cadence / FRAME_TIME)

    @property
    def readouts(self) -> int:
        """Frames co-added per cadence (``NREADOUT``)."""
        if self.nreadout is not None:
            return int(self.nreadout)
        return round(self.frames * self.kept_fraction)

    @property
    def kept_fraction(self) -> float:
        """Fraction of the frames kept by the cosmic-ray mitigation."""
        if not self.crmiten:
            return 1.0
        return (self.crblksz - CR_DISCARDED_PER_BLOCK) / self.crblksz

    @property
    def deadc(self) -> float:
        """Dead-time correction: fraction of the time that photons are collected and kept."""
        return INTEGRATION_TIME / FRAME_TIME * self.kept_fraction
