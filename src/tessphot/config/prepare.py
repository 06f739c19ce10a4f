"""Settings of the prepare stage: ``[prepare]`` and its tables.

``background``, ``motion``, ``storage`` and ``effective_prf``.

All are written to the attributes of the prepared HDF5 file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tessphot.config.fields import Table, setting


@dataclass(frozen=True)
class BackgroundSettings(Table):
    """Settings of the background estimate (:mod:`tessphot.prepare.background`).

    Attributes
    ----------
    box_size : int
        Size of the mesh boxes [px] (>= 1).
    binning : int
        Binning of the image for the box statistics (2: four times fewer pixels to sort;
        >= 1).
    clip_sigma : float
        Sigma-clipping threshold inside a box [sigma] (> 0).
    star_mask_fraction : float
        Mask pixels where catalogued stars add more than this many times the per-pixel
        noise (> 0). Their predicted light is subtracted first, so only pixels where a ~10 %
        error of the prediction (PRF, catalogue flux, jitter) would exceed ~0.3 sigma are
        masked. In a crowded field (0.06 stars per pixel) masking at 0.5 sigma left too few
        sky pixels: background error 130 % of the noise; at 3 sigma 18 %.
    follow_pointing : bool
        Move the starlight model to each frame's pointing, to the nearest whole pixel,
        before it is subtracted (:mod:`tessphot.prepare.starlight`).
    saturation_rate : float
        Calibrated flux above which a pixel counts as saturated [e-/s] (> 0).
    bleed_margin_rows : int
        Rows masked beyond each end of a saturated run [px] (>= 0) ...
    bleed_margin_cols : int
        ... and columns on each side [px] (>= 0).
    source_sigma : float
        Pixels more than this many sigma above the first model are masked as sources (> 0).
    source_dilation : int
        Growth of the source mask [px] (>= 0).
    iterations : int
        Passes of (estimate, mask outliers); each pass after the first refines the residual
        (>= 1).
    min_box_fraction : float
        A box needs this fraction of its pixels unmasked to count (0-1).
    time_smooth_hours : float
        Width of the time smoothing of the mesh [h] (7 frames at 1800 s, 19 at 600 s, 55 at
        200 s): a straight line is fitted to each mesh box over this window, so trends are
        followed, or a parabola where the bend is significant (``curvature_sigma``; >= 0).
    curvature_sigma : float
        A mesh box's time series is fitted with a parabola instead of a straight line where
        its curvature over the window exceeds this many sigma (orbit-end ramps; > 0).
    anomaly_box : int
        Sub-box size for the background-anomaly (shenanigans) check [px] (>= 1).
    anomaly_sigma : float
        A sub-box is anomalous when its median residual exceeds this many sigma (> 0) ...
    anomaly_min_level : float
        ... and this absolute level [e-/s] (>= 0).
    method : str
        ``"mesh"`` (the smooth 2-D mesh estimate of large regions), ``"fit"`` (a constant sky
        fitted per frame jointly with the PRF images of the catalogued stars,
        :mod:`tessphot.prepare.background_small`: for small cutouts where a bright star
        leaves no star-free sky) or ``"auto"``: the fit when a catalog is present and the
        region is at most ``fit_region_size`` px on both sides, or when the mesh would have
        no box with enough sky pixels; the mesh otherwise.
    fit_region_size : int
        See ``method`` [px] (>= 1).
    fit_max_stars : int
        Catalogued stars on the region whose fluxes are fitted per frame, the brightest
        first (>= 0); the others' predicted light is subtracted.
    fit_prf_error : float
        Relative error of the PRF model per pixel (shape, jitter, catalogue flux; >= 0):
        it weights down the star's core, whose model is least certain, in the fit.
    fit_pixels_per_parameter : float
        The fit keeps at least this many usable pixels per free parameter, dropping the
        jitter terms and then the faintest fitted stars when there are fewer (>= 1).
    """

    TABLE = "prepare.background"

    box_size: int = setting(32, unit="px", ge=1)
    binning: int = setting(2, ge=1)
    clip_sigma: float = setting(3.0, unit="sigma", gt=0)
    star_mask_fraction: float = setting(3.0, gt=0)
    follow_pointing: bool = setting(True)
    saturation_rate: float = setting(8.0e4, unit="e-/s", gt=0)
    bleed_margin_rows: int = setting(3, unit="px", ge=0)
    bleed_margin_cols: int = setting(1, unit="px", ge=0)
    source_sigma: float = setting(5.0, unit="sigma", gt=0)
    source_dilation: int = setting(1, unit="px", ge=0)
    iterations: int = setting(5, ge=1)
    validation_fraction: float = setting(0.2, ge=0, le=0.5)
    accept_ratio: float = setting(0.8, gt=0)
    min_box_fraction: float = setting(0.05, ge=0, le=1)
    time_smooth_hours: float = setting(3.0, unit="h", ge=0)
    curvature_sigma: float = setting(3.0, unit="sigma", gt=0)
    anomaly_box: int = setting(16, unit="px", ge=1)
    anomaly_sigma: float = setting(5.0, unit="sigma", gt=0)
    anomaly_min_level: float = setting(2.0, unit="e-/s", ge=0)
    method: str = setting("auto", choices=("auto", "mesh", "fit"))
    fit_region_size: int = setting(20, unit="px", ge=1)
    fit_max_stars: int = setting(3, ge=0)
    fit_prf_error: float = setting(0.05, ge=0)
    fit_pixels_per_parameter: float = setting(3.0, ge=1)

    def as_dict(self) -> dict:
        """The settings as plain values (for the HDF5 attributes)."""
        return self.to_dict()

    def smoothing_window(self, cadence: float) -> int:
        """Odd number of frames averaged in time at this cadence [s]."""
        n = int(round(self.time_smooth_hours * 3600.0 / cadence))
        return max(1, n + (n + 1) % 2)


@dataclass(frozen=True)
class MotionSettings(Table):
    """Settings of the jitter measurement (:mod:`tessphot.prepare.motion`).

    Attributes
    ----------
    tmag_min : float
        Brightest reference stars (bright, unsaturated) [Tmag] ...
    tmag_max : float
        ... and faintest [Tmag].
    max_stars : int
        Most reference stars used (the brightest first; >= 1).
    isolation_radius : float
        No catalogued star brighter than (Tmag + ``isolation_dmag``) within this distance
        [px] (>= 0).
    isolation_dmag : float
        See ``isolation_radius`` [mag].
    centroid_half : int
        Half-width of the centroid box [px] (>= 1).
    min_translation : int
        Fewest stars for a translation (>= 1) ...
    min_euclidean : int
        ... for a rotation (euclidean) (>= 1) ...
    min_affine : int
        ... and for an affine fit (>= 1).
    clip_sigma : float
        Outlier rejection of the fit [sigma] (> 0) ...
    clip_passes : int
        ... and its passes (>= 0).
    calibrate_centroids : bool
        Correct the centroids' bias with the PRF
        (:func:`tessphot.prepare.centroid_calibration.calibrate_centroids`).
    """

    TABLE = "prepare.motion"

    tmag_min: float = setting(7.0, unit="Tmag")
    tmag_max: float = setting(11.5, unit="Tmag")
    max_stars: int = setting(400, ge=1)
    isolation_radius: float = setting(4.0, unit="px", ge=0)
    isolation_dmag: float = setting(4.0, unit="mag")
    centroid_half: int = setting(2, unit="px", ge=1)
    min_translation: int = setting(3, ge=1)
    min_euclidean: int = setting(10, ge=1)
    min_affine: int = setting(40, ge=1)
    clip_sigma: float = setting(4.0, unit="sigma", gt=0)
    clip_passes: int = setting(3, ge=0)
    calibrate_centroids: bool = setting(True)

    def as_dict(self) -> dict:
        """The settings as plain values (for the HDF5 attributes)."""
        return self.to_dict()


@dataclass(frozen=True)
class StorageSettings(Table):
    """How the prepared file stores the images (:mod:`tessphot.prepare.codec`).

    Attributes
    ----------
    lossless : bool
        Store the images and their uncertainties as 32-bit floats (about 2.5 times larger)
        instead of the quantised integers and rounded half-precision uncertainties.
    quantisation_step : float
        Step of the quantised images, as a fraction of each pixel's uncertainty (> 0,
        <= 1/16): with subtractive dithering it adds ``step^2 / 12`` to the pixel's variance
        (0.033 % at 1/16) and no bias.
    error_mantissa_bits : int
        Mantissa bits kept of the half-precision uncertainties (1-10; 7: within 0.4 %).
    compressor : str
        Blosc compressor of the cubes: ``"zstd"`` (smallest), ``"lz4"`` (fastest) or
        ``"blosclz"``.
    compression_level : int
        Its level (1-9).
    shuffle : str
        Blosc's shuffle before compressing: ``"bit"`` or ``"byte"``.
    """

    TABLE = "prepare.storage"

    lossless: bool = setting(False)
    quantisation_step: float = setting(0.0625, gt=0, le=0.0625)
    error_mantissa_bits: int = setting(7, ge=1, le=10)
    compressor: str = setting("zstd", choices=("zstd", "lz4", "blosclz"))
    compression_level: int = setting(1, ge=1, le=9)
    shuffle: str = setting("bit", choices=("bit", "byte"))

    def as_dict(self) -> dict:
        """The settings as plain values (for the HDF5 attributes)."""
        return self.to_dict()


@dataclass(frozen=True)
class EffectivePRFSettings(Table):
    """The effective PRF measured on the average image (:mod:`tessphot.prf.effective`).

    The PRF model's tables are corrected, as a smooth function over the CCD evaluated at
    its nodes, on the bright, isolated, unsaturated stars of the average image: the model
    distorted about the star (width, ellipticity, shear, rotation) and, optionally, a free
    correction regularised towards it.

    Attributes
    ----------
    enabled : bool
        Measure the effective PRF and store it with the prepared data (the photometry then
        uses it in place of the model).
    fit_half : int
        Half-width of the box fitted around each star [px] (2-6): 6 is the tables' whole
        13x13 px footprint (smaller boxes leave the footprint's edge, and with it the
        stars' flux, to the damping: 5 biased the fluxes by 0.3-0.7 %).
    min_snr : float
        Fewest signal-to-noise ratio of a star's flux in the average image (> 0).
    max_stars : int
        Most stars fitted, the highest signal-to-noise first, shared evenly between the
        model's nodes (>= 1).
    min_stars : int
        Fewest stars to measure it on (>= 1); with fewer, none is stored.
    max_contamination : float
        Most light of the other catalogued stars in a star's box, as a fraction of the
        star's own (>= 0).
    saturation_fraction : float
        A star is left out when a pixel of its box, or within ``saturation_margin`` of it,
        reaches this fraction of the saturated rate (a pixel full in every 2-s frame) in
        the average image (0-1).
    saturation_margin : int
        See ``saturation_fraction``: the reach of a saturated pixel's bleeding along its
        column (and one pixel across) [px] (>= 0).
    samples_per_pixel : int
        Samples per pixel of the free correction (1, 3 or 9; cubic B-splines, evaluated on
        the tables' 9 samples per pixel): 3 holds a few-percent change of width or shape to
        within 3-5 % of itself with 9 times fewer unknowns than 9.
    prior_width : float
        Expected size of the free correction (on top of the distortion, fitted on the last
        pass), as a fraction of the model's peak (>= 0; 0: none): its Tikhonov damping
        towards zero. What the stars hardly constrain stays at the model. Off by default:
        on simulated differences (width, shape, focus, halo) it fitted the stars left out
        of the fit worse than the distortion alone (a synthetic full frame: x0.27 of the
        model's residual at 0.003 against x0.08, its sub-pixel gradients 3 times worse; its
        sub-pixel detail needs many more stars than the distortion's four numbers).
    smoothness : float
        Weight of the free correction's second differences relative to its damping (>= 0).
    shape_prior : float
        Expected size of the PRF's distortion about the star (the elements of ``A - I``,
        ``A`` changing its width, ellipticity, shear and rotation,
        :mod:`tessphot.prf.effective_shape`; > 0): a few stars measure these four numbers
        (per polynomial term) well.
    degree : int
        Degree of the correction's polynomial change over the region (0-3): the nodes'
        corrections are one such polynomial, each term a distortion and a free table (0:
        the same correction everywhere; 2 follows a width or shape changing smoothly over
        the CCD, 6 terms, where a correction per node of the model's 5x5 grid left each
        node too few stars; the powers are limited by the nodes spanning the region).
    model_error : float
        Relative error of the PRF per pixel in the weights of the fit (>= 0): it keeps the
        brightest stars from deciding alone.
    iterations : int
        Passes of (fit the stars, fit the correction) (>= 1).
    validation_fraction : float
        Fraction of the chosen stars left out of the fit to check it on (0-0.5): their
        residuals, before and after, are reported apart.
    accept_ratio : float
        The effective PRF is used only when the stars left out of its fit have a median
        reduced chi-square at most this times the model's (> 0): with few stars or little
        signal it fits their noise, and describes other stars worse than the model (it is
        still stored, marked not accepted).
    clip : float
        Stars whose reduced chi-square (the model's error included) exceeds this many times
        the median after a pass are left out of the next (blends, variables; > 1).
    wings_stars : int
        The brightest fitted stars whose mean radial profile beyond the tables' footprint
        gives the extended wings (>= 0; 0: none).
    wings_radius : float
        Outer radius of the wings' profile [px] (> 7), and of the stars' halos.
    halos : bool
        Measure each fitted star's halo relative to the effective PRF (the share of its
        light in a broad Moffat-like halo, :mod:`tessphot.prf.effective_halo`), fit the
        PRF on its last passes without them, and store them with it (every catalogued star
        given one by its brightness) for the photometry (``[photometry]
        effective_prf_halos``).
    focus : bool
        Measure the change of the effective PRF's width with time (focus, over each orbit;
        :mod:`tessphot.prepare.focus`) on the fitted stars, cadence by cadence, and store it
        when significant (the PRF-fitting methods then render each cadence with its own
        PRF).
    focus_stars : int
        Most stars the focus is measured on, the brightest first (>= 1).
    focus_smoothing : float
        Standard deviation of the Gaussian-weighted local line that smooths the cadences'
        width scales within each orbit [h] (> 0).
    focus_significance : float
        The change is kept when the smoothed scale's largest deviation from its mean
        exceeds this many times its uncertainty (> 0); otherwise the PRF stays static.
    """

    TABLE = "prepare.effective_prf"

    enabled: bool = setting(True)
    fit_half: int = setting(6, unit="px", ge=2, le=6)
    min_snr: float = setting(200.0, gt=0)
    max_stars: int = setting(1500, ge=1)
    min_stars: int = setting(10, ge=1)
    max_contamination: float = setting(0.1, ge=0)
    saturation_fraction: float = setting(0.5, gt=0, le=1)
    saturation_margin: int = setting(3, unit="px", ge=0)
    samples_per_pixel: int = setting(3, choices=(1, 3, 9))
    prior_width: float = setting(0.0, ge=0)
    smoothness: float = setting(10.0, ge=0)
    shape_prior: float = setting(0.1, gt=0)
    degree: int = setting(2, ge=0, le=3)
    model_error: float = setting(0.002, ge=0)
    iterations: int = setting(5, ge=1)
    validation_fraction: float = setting(0.2, ge=0, le=0.5)
    accept_ratio: float = setting(0.8, gt=0)
    clip: float = setting(4.0, gt=1)
    wings_stars: int = setting(20, ge=0)
    wings_radius: float = setting(40.0, unit="px", gt=7)
    halos: bool = setting(True)
    focus: bool = setting(True)
    focus_stars: int = setting(100, ge=1)
    focus_smoothing: float = setting(2.0, unit="h", gt=0)
    focus_significance: float = setting(8.0, gt=0)

    def as_dict(self) -> dict:
        """The settings as plain values (for the HDF5 attributes)."""
        return self.to_dict()


@dataclass(frozen=True)
class PrepareSettings(Table):
    """Settings of the prepare stage (table ``[prepare]``).

    Attributes
    ----------
    workers : int or None
        Processes preparing frames in parallel (None: one per core; >= 1).
    background : BackgroundSettings
        Table ``[prepare.background]``.
    motion : MotionSettings
        Table ``[prepare.motion]``.
    storage : StorageSettings
        Table ``[prepare.storage]``.
    effective_prf : EffectivePRFSettings
        Table ``[prepare.effective_prf]``.
    """

    TABLE = "prepare"

    workers: int | None = setting(None, ge=1)
    background: BackgroundSettings = dataclasses.field(default_factory=BackgroundSettings)
    motion: MotionSettings = dataclasses.field(default_factory=MotionSettings)
    storage: StorageSettings = dataclasses.field(default_factory=StorageSettings)
    effective_prf: EffectivePRFSettings = dataclasses.field(default_factory=EffectivePRFSettings)
