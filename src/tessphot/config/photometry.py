"""Settings of the photometry stage: table ``[photometry]`` and one table per method.

Every value is written into the light-curve headers (``HISTORY`` cards ``photometry.<key>``
and ``photometry.<table>.<key>``, read back with
:func:`tessphot.lightcurve.settings_from_header`). The tables:

- ``[photometry]`` (:class:`PhotometrySettings`): the stamp, the contaminants, the PRF, the
  output;
- ``[photometry.aperture]`` (:class:`ApertureSettings`) and ``[photometry.k2p2]``
  (:class:`~tessphot.config.k2p2.K2P2Settings`): aperture photometry and its mask finder;
- ``[photometry.linpsf]``, ``[photometry.psf]`` (:mod:`tessphot.config.fitting`),
  ``[photometry.halo]`` (:class:`~tessphot.config.halo.HaloSettings`);
- ``[photometry.choice]`` (:class:`ChoiceSettings`): the automatic choice of the method.

The old flat keys (``linpsf_fit_radius``) are accepted with a warning
(:mod:`tessphot.config.legacy`).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tessphot.config.fields import SettingsError, Table, setting
from tessphot.config.fitting import LinPSFSettings, PSFSettings
from tessphot.config.halo import HaloSettings
from tessphot.config.k2p2 import K2P2Settings
from tessphot.config.legacy import PHOTOMETRY_KEYS, migrate, new_name

#: The methods the automatic choice can switch to (``[photometry.choice] spill_method``).
SPILL_METHODS = ("linpsf", "halo")
#: Default of ``[photometry.choice] prf_chi2_max`` (see :class:`ChoiceSettings`).
DEFAULT_PRF_CHI2_MAX = 10.0
#: Name of the nested table of K2P2 settings.
K2P2_TABLE = "k2p2"


@dataclass(frozen=True)
class ApertureSettings(Table):
    """Settings of aperture photometry (method ``aperture``).

    Attributes
    ----------
    stamp_grow : int
        Pixels added on each side of the stamp where the aperture touches it [px] (>= 0).
    max_attempts : int
        Mask searches (initial one plus resizes) before giving up (>= 1) ...
    max_attempts_bright : int
        ... and for targets brighter than ``bright_tmag`` (>= 1).
    bright_tmag : float
        Targets brighter than this get ``max_attempts_bright`` [Tmag].
    optimise : bool
        Shrink the K2P2 mask to the pixels that minimise the expected noise of the flux
        (tessphot's addition); False keeps the K2P2 mask as the original did.
    optimise_reach : int
        ... and let it take the pixels outside the K2P2 mask within this many pixels of the
        target's pixel [px] (>= 0; 0: the K2P2 mask's pixels only), a neighbour's pixels
        included: they join when they add more of the target's light than noise, the
        neighbour's variability counted. K2P2's watershed cuts a faint star's mask where a
        brighter neighbour's light rises, often next to the star: on simulated whole
        sectors 14 of 18 variable stars whose aperture was under half the optimal size had
        such a mask (1-2 px chosen of 6-21), and were measured up to 20 % above the
        S/N-optimal aperture's noise.
    background_used_fraction : float
        A pixel is marked as used for the background (APERTURE bit 4) when it was used in at
        least this fraction of the frames (0-1).
    motion_correction : bool
        Correct the aperture flux for the pointing motion (tessphot's addition): the
        target's light scaled to its mean fraction in the aperture and the neighbours' light
        that moves in and out removed, cadence by cadence, from the PRF and the jitter model
        (:mod:`tessphot.photometry.scene`); False gives the plain sum of the aperture.
    motion_correction_saturated : bool
        ... also for saturated targets. A bleed column keeps the charge of its column, so
        while the aperture holds the whole bleed, the light it collects of each column is
        what the PRF puts into the aperture's pixels of that column, and the correction
        holds.
    motion_positions_saturated : bool
        The saturated target's positions in the motion correction come from a linear PSF
        fit of its wings with fitted shifts instead of the jitter model (whose ~0.002-px
        errors move a large aperture's light by 1e-5-1e-4).
    trim_spilling_columns : bool
        A saturated target's aperture whose bleed columns run off the data leaves those
        columns (and one on either side) out instead of switching to ``[photometry.choice]
        spill_method``: the others keep their charge, and the motion correction holds for
        them. Measured on simulated stars bleeding off the data: 2-3 times less noise than
        the fit of the wings, but the few % of the light left are diluted by the prepared
        background's response to the star (signals 2-7 % too shallow), hence off by default.
    """

    TABLE = "photometry.aperture"

    stamp_grow: int = setting(10, unit="px", ge=0)
    max_attempts: int = setting(5, ge=1)
    max_attempts_bright: int = setting(10, ge=1)
    bright_tmag: float = setting(6.0, unit="Tmag")
    optimise: bool = setting(True)
    optimise_reach: int = setting(2, unit="px", ge=0)
    background_used_fraction: float = setting(0.5, ge=0, le=1)
    motion_correction: bool = setting(True)
    motion_correction_saturated: bool = setting(True)
    motion_positions_saturated: bool = setting(True)
    trim_spilling_columns: bool = setting(False)


@dataclass(frozen=True)
class ChoiceSettings(Table):
    """The automatic choice of the method (a task without a method): when to switch.

    Attributes
    ----------
    spill_tmag : float
        The automatic choice switches from aperture photometry (to ``spill_method``) only
        for targets at least this bright whose aperture spills off the stamp or the data
        [Tmag].
    edge_flux : float
        ... and only when a saturated pixel of the aperture lies on the edge of the data
        (its bleed column runs off), the light of the aperture's pixels on that edge
        exceeds this fraction of the catalogue flux (the original's edge-flux criterion), or
        the stamp needed too many resizes (>= 0).
    spill_method : str
        The method it switches to: ``"linpsf"`` (the PRF fitted to its unsaturated wings,
        shifts fitted: unbiased, with the noise of the wings' light; halo photometry instead
        where the PRF is not trusted with the wings: the analytic PRF on real data) or
        ``"halo"``.
    prf_chi2_max : float
        When the PRF fit it switched to describes the target worse than this (its reduced
        chi-square ``PRFCHI2``, the median over the good cadences of each cadence's
        chi-square over its degrees of freedom, is above it), the automatic choice falls
        back to the aperture photometry it switched from, kept with its spill, the reason in
        ``AP_WHY`` (> 1; ``inf``: never).
        The reduced chi-square of a PRF that is a few % off grows with the star's signal to
        noise. On simulated sectors (``benchmarks/bench_prf_chi2.py``) the fits of
        saturated stars' wings with the PRF they were made with reached 1.1-4.7; linear PSF
        photometry of isolated stars was as good as the aperture below 10 (median noise
        ratio 0.89-1.04) and worse above (1.16 at 10-30, 12 at 100-1000); the fits of
        spilling stars with PRF differences were at 3e3-3e4.
    """

    TABLE = "photometry.choice"

    spill_tmag: float = setting(6.0, unit="Tmag")
    edge_flux: float = setting(0.01, ge=0)
    spill_method: str = setting("linpsf", choices=SPILL_METHODS)
    prf_chi2_max: float = setting(DEFAULT_PRF_CHI2_MAX, gt=1)


def _table(cls: type[Table]) -> Any:
    return dataclasses.field(default_factory=cls)


@dataclass(frozen=True)
class PhotometrySettings(Table):
    """Settings of the photometry stage: the common ones and one table per method.

    Attributes
    ----------
    stamp_min_size : int
        Smallest stamp side [px] (the original's 15; >= 1).
    contaminant_tmag_max : float
        Catalog stars fainter than this are ignored on the stamp (markers, contamination,
        skip list) [Tmag].
    saturation_fraction : float
        A pixel whose brightest good cadence (or mean, for the aperture's edge) reaches this
        fraction of a full pixel's flux (the full well in every 2-s frame) is saturated:
        linear and PSF photometry leave it out of their fits (the PRF does not describe it),
        aperture photometry treats a target with such a pixel in its mask as saturated (it
        keeps its whole mask; ``motion_correction_saturated``, ``motion_positions_saturated``),
        and an aperture with such a pixel on the edge of the data has its bleed column
        running off the data (> 0).
    prf_dir : str
        Folder of SPOC PRF models for the motion correction and the contamination; empty:
        the PRF the prepare stage used (its effective PRF when it measured one, see
        ``effective_prf``, else the model recorded in the HDF5 file; for target pixel files
        ``$TESSPHOT_PRF_DIR``, else analytic), ``"analytic"``: the
        analytic PRF, ``"archive"``: the SPOC models in the download cache ``prf_cache``,
        downloaded from ``prf_url`` first when missing (:mod:`tessphot.prf.download`).
    prf_cache : str
        Download cache of the SPOC PRF models (also for ``tessphot prepare --prf-dir
        archive`` and ``tessphot prf-download``); empty: ``$TESSPHOT_PRF_CACHE``, else
        ``~/.cache/tessphot/prf``.
    prf_url : str
        The archive's folder of SPOC PRF models (a mirror); empty: ``$TESSPHOT_PRF_URL``,
        else MAST's (:data:`tessphot.prf.cache.PRF_URL`).
    effective_prf : bool
        With ``prf_dir`` empty, use the effective PRF the prepare stage measured on the
        data (``[prepare.effective_prf]``) for every PRF-based method, rather than the model
        it corrects (false: the model; written into the light curves' headers, ``AP_PRF``
        and ``PSF_PRF``).
    effective_prf_focus : bool
        With the effective PRF, render each cadence with its own PRF where the prepare
        stage found its width changing with time (focus, ``[prepare.effective_prf] focus``:
        linear PSF and PSF photometry, the aperture's motion correction); false: the static
        effective PRF throughout.
    effective_prf_halos : bool
        With the effective PRF, split each star's light between it and the star's halo as
        the prepare stage measured them (``[prepare.effective_prf] halos``): the aperture's
        motion correction and contamination, and the linear PSF and PSF fits' star images,
        then hold a bright star's halo, which the one PRF of every star does not.
    tpf_background : str
        Background of target pixel files: ``"spoc"`` (SPOC's ``FLUX_BKG``, as subtracted
        from its ``FLUX``) or ``"fit"``: ours, a constant sky fitted per cadence with the
        PRFs of the catalogued stars (:mod:`tessphot.sources.tpf_background`; SPOC's is
        biased for bright stars). Where SPOC's background is NaN (the brightest stars) ours
        is used whatever this says, with a warning.
    gzip_level : int
        Compression level of the ``.fits.gz`` light curves (1 fastest, 9 smallest; noisy
        floating-point columns compress about as well at 1 as at 9, 3 % larger files; 1-3
        use ISA-L's fast deflate, 4-9 zlib's; 0-9).
    aperture : ApertureSettings
        Table ``[photometry.aperture]``.
    k2p2 : K2P2Settings
        Table ``[photometry.k2p2]``: the mask finder of aperture photometry.
    linpsf : LinPSFSettings
        Table ``[photometry.linpsf]``.
    psf : PSFSettings
        Table ``[photometry.psf]``.
    halo : HaloSettings
        Table ``[photometry.halo]``.
    choice : ChoiceSettings
        Table ``[photometry.choice]``: the automatic choice of the method.
    """

    TABLE = "photometry"

    stamp_min_size: int = setting(15, unit="px", ge=1)
    contaminant_tmag_max: float = setting(19.0, unit="Tmag")
    saturation_fraction: float = setting(0.8, gt=0)
    prf_dir: str = setting("", path=True)
    prf_cache: str = setting("", path=True)
    prf_url: str = setting("")
    effective_prf: bool = setting(True)
    effective_prf_focus: bool = setting(True)
    effective_prf_halos: bool = setting(True)
    gzip_level: int = setting(1, ge=0, le=9)
    tpf_background: str = setting("spoc", choices=("spoc", "fit"))
    aperture: ApertureSettings = _table(ApertureSettings)
    k2p2: K2P2Settings = _table(K2P2Settings)
    linpsf: LinPSFSettings = _table(LinPSFSettings)
    psf: PSFSettings = _table(PSFSettings)
    halo: HaloSettings = _table(HaloSettings)
    choice: ChoiceSettings = _table(ChoiceSettings)

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any] | None = None, *, strict: bool = False
    ) -> PhotometrySettings:
        """The settings of a ``[photometry]`` table (old flat keys accepted with a warning).

        Parameters
        ----------
        values : mapping, optional
            The table: common keys and nested tables, or old flat keys.
        strict : bool
            A setting given under its old and its new name is an error (a settings file).

        Raises
        ------
        SettingsError
            For an unknown key or an invalid value (an old key named as it was given).
        """
        if isinstance(values, PhotometrySettings):
            return values
        new, moved = migrate(values or {}, strict=strict, announce=strict)
        try:
            return super().from_mapping(new)
        except SettingsError as err:
            old = moved.get((getattr(err, "table", None), getattr(err, "key", None)))
            if old is None:
                raise
            raise SettingsError(
                f"invalid setting {old} = {err.value!r}: {err.problem} (now {new_name(old)})"
            ) from None

    def __getattr__(self, name: str) -> Any:
        """The value of an old flat key, e.g. ``linpsf_fit_radius`` (deprecated)."""
        if name not in PHOTOMETRY_KEYS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        table, key = PHOTOMETRY_KEYS[name]
        warnings.warn(
            f"PhotometrySettings.{name} is deprecated: use .{table}.{key}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(getattr(self, table), key)


def photometry_settings(
    values: PhotometrySettings | Mapping[str, Any] | None,
) -> PhotometrySettings:
    """Settings from a ``[photometry]`` table (see :meth:`PhotometrySettings.from_mapping`).

    Settings already checked are returned as they are.
    """
    return PhotometrySettings.from_mapping(values)


def default_settings() -> dict[str, Any]:
    """The ``[photometry]`` defaults as plain values (nested tables as dicts)."""
    return PhotometrySettings().to_dict()
