"""Settings of a simulation (table ``[simulate]``; :class:`SimulationConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from tessphot.config.fields import Table, setting
from tessphot.constants import SCIENCE_SIZE

#: Data release written by default: the first with correct time stamps (see tessphot.timefix).
DEFAULT_DATA_RELEASE = 30
#: Fraction of stars that are variable by default.
DEFAULT_VARIABLE_FRACTION = 0.3
#: e-folding time of the scattered-light ramps at the orbits' starts and ends [d].
DEFAULT_SCATTER_RAMP = 1.5
#: Largest red-noise rms of a variable star (relative flux; drawn log-uniform from 1e-4).
DEFAULT_RED_NOISE_MAX = 2e-3
#: Common-mode systematics (off by default): the thermal ramp's relative flux change at an
#: orbit's start at the field's corner, its e-folding time [d], the drift's relative change
#: from an orbit's middle to its end, the rms relative step level between momentum dumps and
#: the rms of the additive residual scattered light at an orbit's end [e-/s/px].
DEFAULT_SYSTEMATICS_THERMAL = 4e-3
DEFAULT_SYSTEMATICS_THERMAL_TIME = 1.0
DEFAULT_SYSTEMATICS_DRIFT = 2e-3
DEFAULT_SYSTEMATICS_DUMPS = 1e-3
DEFAULT_SYSTEMATICS_ADDITIVE = 0.5
#: Largest relative amplitude a multiplicative systematic may be given.
SYSTEMATICS_MAX = 0.1
#: Simulated PRF differences (off by default): the mean relative change of the PRF's width
#: over the CCD, the mean ellipticity added and its direction [deg], the relative width
#: change at each orbit's start and its e-folding time [d], and the halo of the bright stars:
#: its fraction of their light, the magnitude they are brighter than [Tmag], its outer
#: radius [px] and the power-law index of its surface brightness.
DEFAULT_PRF_WIDTH_CHANGE = 0.03
DEFAULT_PRF_ELLIPTICITY = 0.03
DEFAULT_PRF_ANGLE = 30.0
DEFAULT_PRF_FOCUS_CHANGE = 0.02
DEFAULT_PRF_FOCUS_TIME = 1.0
DEFAULT_PRF_HALO_FRACTION = 0.02
DEFAULT_PRF_HALO_TMAG = 9.5
DEFAULT_PRF_HALO_RADIUS = 40.0
DEFAULT_PRF_HALO_INDEX = 2.5
#: Largest relative change of the PRF's width or shape a setting may ask for.
PRF_CHANGE_MAX = 0.2
#: Range of the halo's outer radius [px] (its rendering costs the square of it per star).
PRF_HALO_RADIUS_RANGE = (5.0, 100.0)
#: Largest power-law index of the halo.
PRF_HALO_INDEX_MAX = 6.0
#: Fields of :class:`SimulationConfig` that are not settings (given per run).
NOT_SETTINGS = ("origin", "demo_star", "extra_stars")


@dataclass(frozen=True)
class PRFDifferenceSettings(Table):
    """How the simulated stars' PRF differs from the model (table ``[simulate.prf]``).

    The stars are rendered with the PRF model (SPOC or analytic) transformed
    (:mod:`tessphot.evaluation.simulate.prf_differences`): scaled and stretched about the
    star by a smooth field over the CCD, scaled by a focus change over each orbit, and, for
    bright stars, part of the light spread into a broad halo. The truth file keeps all of
    it (group ``prf_differences``).

    Attributes
    ----------
    enabled : bool
        Render the stars with a PRF that differs from the model the pipeline fits, as the
        other keys set (off: the simulation is exactly the one without these settings).
    width_change : float
        Mean relative change of the PRF's width over the CCD: the PRF is scaled by
        ``1 + width_change`` on average, a drawn quadratic field over the CCD varying the
        change by half of itself (-0.2-0.2).
    ellipticity : float
        Mean ellipticity added to the PRF: it is stretched by ``1 + e`` along ``angle`` and
        squeezed by ``1 - e`` across it, a drawn field varying ``e`` by half of itself over
        the CCD (0-0.2).
    angle : float
        Mean direction of the stretch, from the column axis towards the row axis [deg]; a
        drawn field turns it by up to 45 degrees over the CCD.
    focus_change : float
        Relative change of the PRF's width at each orbit's start, decaying over
        ``focus_time`` (the focus settling after each downlink; -0.2-0.2).
    focus_time : float
        e-folding time of the focus change after each orbit's start [d] (> 0).
    halo_fraction : float
        Fraction of the light of the stars brighter than ``halo_tmag`` that is spread into
        a broad halo (their extended wings) rather than the PRF (0-0.2).
    halo_tmag : float
        Stars brighter than this get the halo [Tmag].
    halo_radius : float
        Outer radius of the halo [px] (5-100; it is tapered to zero from 3/4 of it).
    halo_index : float
        Power-law index of the halo's surface brightness, ``(1 + (r / 2 px)^2)^(-index / 2)``
        (> 0, <= 6).
    """

    TABLE = "simulate.prf"

    enabled: bool = setting(False)
    width_change: float = setting(DEFAULT_PRF_WIDTH_CHANGE, ge=-PRF_CHANGE_MAX, le=PRF_CHANGE_MAX)
    ellipticity: float = setting(DEFAULT_PRF_ELLIPTICITY, ge=0, le=PRF_CHANGE_MAX)
    angle: float = setting(DEFAULT_PRF_ANGLE, unit="deg", ge=-180, le=180)
    focus_change: float = setting(DEFAULT_PRF_FOCUS_CHANGE, ge=-PRF_CHANGE_MAX, le=PRF_CHANGE_MAX)
    focus_time: float = setting(DEFAULT_PRF_FOCUS_TIME, unit="d", gt=0)
    halo_fraction: float = setting(DEFAULT_PRF_HALO_FRACTION, ge=0, le=PRF_CHANGE_MAX)
    halo_tmag: float = setting(DEFAULT_PRF_HALO_TMAG, unit="mag")
    halo_radius: float = setting(
        DEFAULT_PRF_HALO_RADIUS,
        unit="px",
        ge=PRF_HALO_RADIUS_RANGE[0],
        le=PRF_HALO_RADIUS_RANGE[1],
    )
    halo_index: float = setting(DEFAULT_PRF_HALO_INDEX, gt=0, le=PRF_HALO_INDEX_MAX)


@dataclass
class SimulationConfig(Table):
    """Settings of a simulation (every one is written to the headers and the truth file).

    Attributes
    ----------
    sector : int
        Sector (>= 1).
    camera : int
        Camera (1-4).
    ccd : int
        CCD (1-4).
    cadences : int or None
        Number of cadences (None: the whole sector; >= 1).
    stars : int or None
        Stars of the power-law population on the region (None: scales with the area; >= 0).
    bright : int
        Extra bright, saturating stars (Tmag 2-6) on the region (>= 0).
    size : int or None
        Size of a square crop of the science area [px] (None: full 2048x2048 frames).
    origin : tuple of int or None
        Science-area (row, column) of the crop's first pixel (None: centred; not a setting).
    seed : int
        Seed of the random numbers.
    prf_dir : str or None
        Folder with SPOC PRF models (None: analytic PRF).
    variable_fraction : float
        Fraction of stars that are variable (0-1).
    sector1_dir : str or None
        Folder with the real sector-1 data (cadence quality, TessVectors); enables
        ``jitter`` and ``quality`` ``"sector1"``.
    jitter : str
        ``"random"`` or ``"sector1"`` (real quaternions; needs ``sector1_dir``).
    quality : str
        ``"synthetic"`` or ``"sector1"`` (real FFI quality flags; needs ``sector1_dir``).
    timing : str
        ``"regular"`` (cadences from the sector's start to its end, less the orbit gap) or
        ``"sector1"`` (the 1282 real sector-1 FFI cadences and their orbit gap, cadence by
        cadence with their quality flags; sector 1 only, needs ``sector1_dir``).
    scatter_peak : float or None
        Scattered light at the very end of an orbit [e-/s/px] (None: drawn from 60-200;
        >= 0).
    scatter_ramp : float
        e-folding time of the scattered-light rise towards an orbit's start and end [d]
        (> 0; shorter is steeper).
    red_noise_max : float
        Largest red-noise rms of a variable star (relative flux; drawn log-uniform from
        1e-4; > 1e-4, <= 0.1).
    systematics : bool
        Add common-mode systematics to the raw flux, their truth kept in the truth file's
        ``systematics`` group (:mod:`tessphot.evaluation.simulate.systematics`): stars'
        fluxes times ``1 + m`` (thermal ramps after each orbit start, a drift over each
        orbit, steps at the momentum dumps; varying smoothly with the distance from the
        camera's optical axis) and an additive residual scattered light with structure
        finer than the background mesh, rising towards each orbit's end. Off: the
        simulation is exactly the one without these settings.
    systematics_thermal : float
        Relative flux lost at an orbit's start by a star at the field's corner
        (``CBV_AREA_RADIUS_DEG`` from the optical axis; a fifth of it on the axis),
        decaying over ``systematics_thermal_time`` (0-0.1).
    systematics_thermal_time : float
        e-folding time of the thermal ramps after each orbit start [d] (> 0).
    systematics_drift : float
        Relative flux change of the drift from an orbit's middle to its end, at the
        field's corner (opposite near the axis, plus a gradient across the CCD; 0-0.1).
    systematics_dumps : float
        rms relative flux level between two momentum dumps at the field's corner (half of it
        on the axis; each dump steps to a new level; 0-0.1).
    systematics_additive : float
        rms of the additive residual scattered light at an orbit's very end [e-/s/px] at the
        field's corner (half of it on the axis; rising over ``scatter_ramp``; >= 0).
    prf : PRFDifferenceSettings
        Table ``[simulate.prf]``: how the stars' PRF differs from the model (off by
        default).
    data_rel : int
        Data release written into the headers (>= 1).
    compress : bool
        Write compressed FFIs.
    demo_star : bool
        Place the demo star (TIC 182092046) at the region's centre (not a setting).
    extra_stars : list
        Stars placed on the region: ``(starid, tmag, row, col)`` [science-area px], or
        ``(starid, tmag, row, col, signal)`` with ``signal`` a mapping that replaces the
        star's drawn signal, e.g. ``{"kind": "transit", "amplitude": 0.004, "period": 2.5,
        "duration": 0.15}`` (:func:`tessphot.evaluation.simulate.variability.chosen_signal`; not a
        setting).
    """

    TABLE = "simulate"

    sector: int = setting(1, ge=1)
    camera: int = setting(1, ge=1, le=4)
    ccd: int = setting(4, ge=1, le=4)
    cadences: int | None = setting(None, ge=1)
    stars: int | None = setting(None, ge=0)
    bright: int = setting(2, ge=0)
    size: int | None = setting(None, unit="px")
    origin: tuple[int, int] | None = None
    seed: int = setting(42)
    prf_dir: str | None = setting(None, path=True)
    variable_fraction: float = setting(DEFAULT_VARIABLE_FRACTION, ge=0, le=1)
    sector1_dir: str | None = setting(None, path=True)
    jitter: str = setting("random", choices=("random", "sector1"))
    quality: str = setting("synthetic", choices=("synthetic", "sector1"))
    timing: str = setting("regular", choices=("regular", "sector1"))
    scatter_peak: float | None = setting(None, unit="e-/s/px", ge=0)
    scatter_ramp: float = setting(DEFAULT_SCATTER_RAMP, unit="d", gt=0)
    red_noise_max: float = setting(DEFAULT_RED_NOISE_MAX, gt=1e-4, le=0.1)
    systematics: bool = setting(False)
    systematics_thermal: float = setting(DEFAULT_SYSTEMATICS_THERMAL, ge=0, le=SYSTEMATICS_MAX)
    systematics_thermal_time: float = setting(DEFAULT_SYSTEMATICS_THERMAL_TIME, unit="d", gt=0)
    systematics_drift: float = setting(DEFAULT_SYSTEMATICS_DRIFT, ge=0, le=SYSTEMATICS_MAX)
    systematics_dumps: float = setting(DEFAULT_SYSTEMATICS_DUMPS, ge=0, le=SYSTEMATICS_MAX)
    systematics_additive: float = setting(DEFAULT_SYSTEMATICS_ADDITIVE, unit="e-/s/px", ge=0)
    prf: PRFDifferenceSettings = field(default_factory=PRFDifferenceSettings)
    data_rel: int = setting(DEFAULT_DATA_RELEASE, ge=1)
    compress: bool = setting(True)
    demo_star: bool = False
    extra_stars: list = field(default_factory=list)

    def region(self) -> tuple[int, int, int, int]:
        """Science-area region ``(row0, row1, col0, col1)`` (half-open) that is simulated."""
        if self.size is None:
            return 0, SCIENCE_SIZE, 0, SCIENCE_SIZE
        if not 1 <= self.size <= SCIENCE_SIZE:
            raise ValueError(f"--size must be 1-{SCIENCE_SIZE}, not {self.size}")
        if self.origin is None:
            r0 = c0 = (SCIENCE_SIZE - self.size) // 2
        else:
            r0, c0 = self.origin
        if not (0 <= r0 <= SCIENCE_SIZE - self.size and 0 <= c0 <= SCIENCE_SIZE - self.size):
            raise ValueError(f"crop at {self.origin} of size {self.size} leaves the CCD")
        return r0, r0 + self.size, c0, c0 + self.size

    @classmethod
    def settings_keys(cls) -> list[str]:
        """The keys of table ``[simulate]``: the fields but :data:`NOT_SETTINGS`.

        ``prf`` is the nested table ``[simulate.prf]``.
        """
        return [f.name for f in fields(cls) if f.name not in NOT_SETTINGS]
