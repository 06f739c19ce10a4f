"""TESS's position from SPICE kernels (optional: needs ``spiceypy``).

For users who have TESS's SPK kernels (and a planetary ephemeris when they are relative
to the Earth).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np

from tessphot.timing.source import (
    J2000_JD,
    SECONDS_PER_DAY,
    TESS_NAIF_ID,
    Ephemeris,
    EphemerisError,
)


class SpiceEphemeris(Ephemeris):
    """TESS's position from SPICE kernels (needs ``spiceypy``).

    Every kernel file in the folder (``*.bsp``, ``*.tls``, ``*.tpc``, ``*.tf``, ``*.tsc``)
    is loaded; the coverage is that of TESS (-95) in the SPK files. SPICE's ``J2000``
    frame is the ICRF here (their difference, < 0.03 arcsec, is far below what timing
    needs).

    Parameters
    ----------
    folder : path-like
        The kernel folder.

    Raises
    ------
    EphemerisError
        When spiceypy is not installed or no SPK kernel covers TESS.
    """

    KERNEL_SUFFIXES = (".bsp", ".tls", ".tpc", ".tf", ".tsc", ".bc")

    def __init__(self, folder: str | os.PathLike) -> None:
        try:
            import spiceypy
        except ImportError:
            raise EphemerisError(
                "SPICE kernels are configured but spiceypy is not installed "
                "(pip install 'tessphot[spice]')"
            ) from None
        self._spice = spiceypy
        folder = Path(folder)
        files = sorted(
            p for p in folder.glob("*") if p.is_file() and p.suffix.lower() in self.KERNEL_SUFFIXES
        )
        spk = [p for p in files if p.suffix.lower() == ".bsp"]
        if not spk:
            raise EphemerisError(f"{folder}: no SPK kernel (*.bsp) in the SPICE kernel folder")
        for path in files:
            _furnish(str(path))
        windows = []
        for path in spk:
            cover = spiceypy.cell_double(20000)
            try:
                spiceypy.spkcov(str(path), TESS_NAIF_ID, cover)
            except spiceypy.utils.exceptions.SpiceyError as err:
                raise EphemerisError(f"{path}: unreadable SPK kernel ({err})") from None
            for i in range(spiceypy.wncard(cover)):
                windows.append(spiceypy.wnfetd(cover, i))
        if not windows:
            raise EphemerisError(f"{folder}: no SPK kernel covers TESS ({TESS_NAIF_ID})")
        self.windows = sorted(windows)
        self.start = min(w[0] for w in windows) / SECONDS_PER_DAY + J2000_JD
        self.stop = max(w[1] for w in windows) / SECONDS_PER_DAY + J2000_JD
        self.name = f"SPICE kernels in {folder}"

    def covers(self, jd_min: float, jd_max: float) -> bool:
        """Whether every time in ``[jd_min, jd_max]`` [JD, TDB] lies in one SPK window."""
        et0 = (jd_min - J2000_JD) * SECONDS_PER_DAY
        et1 = (jd_max - J2000_JD) * SECONDS_PER_DAY
        return any(lo <= et0 and et1 <= hi for lo, hi in self.windows)

    def _position(self, jd: np.ndarray) -> np.ndarray:
        et = (jd - J2000_JD) * SECONDS_PER_DAY
        try:
            pos, _ = self._spice.spkpos(str(TESS_NAIF_ID), et, "J2000", "NONE", "0")
        except self._spice.utils.exceptions.SpiceyError as err:
            raise EphemerisError(f"{self.name}: {err}") from None
        return np.asarray(pos, dtype=np.float64).reshape(-1, 3)


@cache
def _furnish(path: str) -> None:
    """Load a kernel into SPICE once per process (SPICE's kernel pool is global)."""
    import spiceypy

    spiceypy.furnsh(path)
