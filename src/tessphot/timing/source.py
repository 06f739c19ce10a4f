"""The ephemeris interface: an observer's barycentric position versus time.

Every source gives the position of the observer relative to the solar-system barycentre
in the ICRF [km] at barycentric dynamical times (TDB, as Julian dates). The sources of
TESS's position are Horizons tables (:mod:`tessphot.timing.tables`) and SPICE kernels
(:mod:`tessphot.timing.spice`); :class:`GeocentreEphemeris` is the observer of simulated
data.
"""

from __future__ import annotations

import numpy as np

from tessphot.io.errors import TessphotError

#: Astronomical unit [km] (IAU 2012).
AU_KM = 149_597_870.7
#: Seconds per day.
SECONDS_PER_DAY = 86400.0
#: Julian date of J2000.0 (TDB), the origin of SPICE ephemeris time [d].
J2000_JD = 2451545.0
#: NAIF ID of TESS.
TESS_NAIF_ID = -95


class EphemerisError(TessphotError):
    """No usable position of TESS (the message says why and what to do)."""


class Ephemeris:
    """Barycentric position of an observer (base class).

    Attributes
    ----------
    name : str
        What the positions come from (written into the light-curve headers).
    start, stop : float
        Covered interval [JD, TDB].
    """

    name = "ephemeris"
    start = -np.inf
    stop = np.inf

    def covers(self, jd_min: float, jd_max: float) -> bool:
        """Whether every time in ``[jd_min, jd_max]`` [JD, TDB] is covered."""
        return bool(self.start <= jd_min and jd_max <= self.stop)

    def position_km(self, jd_tdb: np.ndarray) -> np.ndarray:
        """Barycentric ICRF position [km] at times ``jd_tdb`` [JD, TDB], shape (N, 3).

        Raises
        ------
        EphemerisError
            For a finite time outside the coverage. Non-finite times give NaN.
        """
        jd = np.atleast_1d(np.asarray(jd_tdb, dtype=np.float64))
        out = np.full((jd.size, 3), np.nan)
        ok = np.isfinite(jd)
        if ok.any():
            lo, hi = float(jd[ok].min()), float(jd[ok].max())
            if not self.covers(lo, hi):
                raise EphemerisError(
                    f"{self.name}: covers JD {self.start:.3f}-{self.stop:.3f}, not the "
                    f"requested JD {lo:.3f}-{hi:.3f}"
                )
            out[ok] = self._position(jd[ok])
        return out

    def _position(self, jd: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class GeocentreEphemeris(Ephemeris):
    """The Earth's centre (astropy's built-in ephemeris): the observer of simulated data."""

    name = "geocentre (simulated data)"

    def _position(self, jd: np.ndarray) -> np.ndarray:
        from astropy.coordinates import get_body_barycentric
        from astropy.time import Time

        xyz = get_body_barycentric("earth", Time(jd, format="jd", scale="tdb"))
        return np.asarray(xyz.get_xyz().to_value("km")).T
