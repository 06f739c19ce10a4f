"""Aperture photometry with K2P2 masks (§5.9 of the notes), and a noise-optimal aperture.

1. **Mask.** K2P2 (:func:`tessphot.photometry.k2p2.k2p2_masks`) finds the masks of the stars
   in the stamp's average image, with watershed markers at the catalog stars (at their
   average position in the data, from the jitter model). The target's mask is the one on
   the pixel of its position. None: the minimum aperture (2x2 or 3x3 pixels around it) and
   status WARNING. A mask touching the stamp's edge grows the stamp by
   ``stamp_grow`` pixels on those sides and the search starts again (at most
   ``max_attempts`` searches, ``max_attempts_bright`` for bright targets). Still touching,
   the mask of an unsaturated target is cut to the pixels within the PRF's reach of the
   target that connect to it, when those do not reach the stamp's edge: the mask ran on
   into another star's light (a faint star in a saturated star's wings); WARNING,
   ``AP_FOOT``. Otherwise ERROR. A mask touching the edge of the data cannot grow: WARNING.
2. **Noise-optimal aperture** (tessphot's addition, setting ``optimise``;
   :mod:`tessphot.photometry.aperture_optimal`). K2P2's masks reach down to the sky noise
   of the *average* image, far below the noise of one cadence, so for faint stars they hold
   many pixels that add more noise than light, and their edges cut through the wings of the
   star and of its neighbours. From the PRF, the catalogue and the jitter model, the
   target's and the other stars' light in every pixel is predicted for ``JITTER_GROUPS``
   groups of consecutive cadences. The mask's pixels are ranked by the target's light over
   the pixel's variance (median per-cadence variance from ``images_err``, which includes
   the background uncertainty), and the aperture is the top-``k`` set that minimises the
   expected noise of the target's light on one hour: photon, sky and read noise averaged
   over an hour, plus what stays in the groups' mean images after the motion correction
   (step 4) and after the target's own variability (its light's scale in each group,
   fitted with a background offset: the star's variability is signal, not noise, and must
   not shrink its aperture). What stays is the slow noise of the aperture: neighbours
   varying, background errors, motion the correction leaves; and hour by hour, what the
   pixels' changes share (a neighbour's eclipses; :mod:`~tessphot.photometry.aperture_fast`).
   Bright stars keep their wings, faint stars their core. Where K2P2's watershed cut the
   mask next to the target, the pixels within ``optimise_reach`` of the target's pixel are
   candidates too, a neighbour's included (``AP_OUTK2``: how many the aperture took).
   Saturated targets (a pixel of the mask reaching ``saturation_fraction`` of a full pixel
   in a good cadence) keep the whole mask (their bleed columns must be summed).
3. **Flux.** Per cadence: the sum of the background-subtracted pixels of the aperture (NaN
   when one of them is missing), the uncertainty ``sqrt(sum(err^2))``, the summed
   background, and the flux-weighted centroid of the aperture's positive pixels. QUALITY
   bit 256 (BackgroundShenanigans) marks cadences where an aperture pixel carries that
   pixel flag.
4. **Motion correction** (tessphot's addition, setting ``motion_correction``). The aperture
   is fixed on the pixels while the pointing moves the stars (0.1-0.5 px jumps at momentum
   dumps change the light a small aperture collects by percent). From the PRF and the jitter
   model, :mod:`tessphot.photometry.scene` gives the fraction of each catalogued star's
   light in the aperture in every cadence; the flux is corrected to ``(sum - others(t)) *
   mean_fraction / fraction(t) + mean(others)``: the neighbours' light moving in and out is
   removed and the target's light is scaled to its mean fraction, so the mean level stays
   the aperture's. Saturated targets (:attr:`AperturePhotometry.saturated`: a pixel of
   the mask at ``saturation_fraction`` of a full pixel in the average image) are corrected
   only with ``motion_correction_saturated``, with their positions from a fit of their
   wings (``motion_positions_saturated``). Not applied with the analytic PRF on real data
   (too crude in the wings: the SPOC models are needed, setting ``prf_dir``).
5. **Contamination and neighbours.** The contamination is the catalogued neighbours' mean
   light in the aperture over all catalogued light in it, from the PRF (wings included);
   the other stars centred in the aperture are the task's ``skip_targets``.
"""

from __future__ import annotations

import logging
import math
from functools import cached_property
from typing import Any

import numpy as np
from scipy import ndimage

from tessphot.constants import SATURATED_RATE, tmag_to_flux
from tessphot.io.errors import TessphotError
from tessphot.lightcurve import aperture_image
from tessphot.lightcurve.diagnostics import mask_diagnostics
from tessphot.photometry.aperture_optimal import optimise_mask
from tessphot.photometry.errors import K2P2Error, PhotometryError
from tessphot.photometry.k2p2 import k2p2_masks, minimum_aperture, skip_targets
from tessphot.photometry.linpsf import LinPSFPhotometry
from tessphot.photometry.method import (
    QUALITY_BACKGROUND_SHENANIGANS,
    SWITCH_REASON_LENGTH,
    PhotometryMethod,
)
from tessphot.photometry.scene import PRF_REACH, ApertureLight, aperture_light
from tessphot.photometry.stamps import SIDES, bounding_box, footprint_cut, touched_sides
from tessphot.prepare.flags import PixelFlags
from tessphot.tasks.status import STATUS

#: A pixel of an aperture on the edge of the data at this fraction of a full pixel (or more)
#: is a bleed column running off the data.
SPILL_EDGE_FRACTION = 0.5
logger = logging.getLogger(__name__)


class AperturePhotometry(PhotometryMethod):
    """Aperture photometry of one target (see the module notes)."""

    method = "aperture"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.k2p2 = self.settings.k2p2
        self.k2p2_mask: np.ndarray | None = None
        self.minimum_aperture_used = False
        #: The K2P2 mask cut to the target's footprint (it ran on beyond the stamp).
        self.footprint_cut = False
        self.optimised = False
        self.motion_corrected = False
        self.positions_fitted = False
        #: Columns of bleeding off the data left out of the mask.
        self.trimmed_columns = 0
        self.light: ApertureLight | None = None
        self._background_used: np.ndarray | None = None

    def settings_record(self) -> dict[str, Any]:
        """Every tunable of the photometry, K2P2's included (written into the header)."""
        return {**super().settings_record(), "k2p2": self.k2p2.to_dict()}

    # ------------------------------------------------------------------------------------
    def _find_mask(self) -> tuple[np.ndarray, STATUS]:
        """The target's K2P2 mask on a stamp grown until the mask fits (see module notes)."""
        s = self.settings
        attempts = (
            s.aperture.max_attempts_bright
            if self.target.tmag < s.aperture.bright_tmag
            else s.aperture.max_attempts
        )
        for _ in range(max(int(attempts), 1)):
            image = self.target.sumimage
            if not np.isfinite(image).any():
                raise PhotometryError(
                    f"TIC {self.starid}: no data on the stamp {self.target.stamp} (all pixels NaN)"
                )
            row, col = self.target.stamp_position
            pixel = (int(math.floor(row + 0.5)), int(math.floor(col + 0.5)))
            try:
                masks = k2p2_masks(image, self.target.catalog, self.k2p2, target=pixel).masks
            except K2P2Error as err:
                logger.debug("TIC %d: %s", self.starid, err)
                masks = np.zeros((0, *image.shape), dtype=bool)
            hits = [m for m in masks if m[pixel]]
            if len(hits) > 1:
                raise PhotometryError(f"TIC {self.starid}: Too many masks on the target")
            if not hits:
                logger.warning(
                    "TIC %d: no K2P2 mask holds the target: using the minimum aperture",
                    self.starid,
                )
                self.minimum_aperture_used = True
                mask = minimum_aperture(image.shape, row, col, np.isfinite(image))
                return mask, STATUS.WARNING
            mask = hits[0]
            self.k2p2_mask = mask
            touching = touched_sides(mask)
            if not any(touching.values()):
                return mask, STATUS.OK
            if self.target.source.full_stamp:
                # A target pixel file: SPOC chose the pixels; the mask may reach their edge.
                logger.info(
                    "TIC %d: the aperture reaches the edge of the target pixels", self.starid
                )
                return mask, STATUS.OK
            grow = {side: s.aperture.stamp_grow if hit else 0 for side, hit in touching.items()}
            searched = self.target.stamp
            if not self.target.resize_stamp(**grow):
                return self._at_data_edge(mask, image)
        self.target.set_stamp(searched)  # the stamp the last mask was found on
        found = self._cut_to_footprint(mask, pixel, image)
        if found is not None:
            return found
        self.spill_reason = "too many stamp resizes"
        raise PhotometryError(
            f"TIC {self.starid}: Too many stamp resizes: the aperture still touches the edge "
            f"of the stamp {self.target.stamp} after {attempts} attempts"
        )

    def _cut_to_footprint(
        self, mask: np.ndarray, pixel: tuple[int, int], image: np.ndarray
    ) -> tuple[np.ndarray, STATUS] | None:
        """The mask of a target whose own light cannot reach the stamp's edge, or None.

        Such a mask ran on into another star's light (a faint star in a saturated star's
        wings or beside its bleed column), which is no use to the target: it is cut to its
        unsaturated part within :data:`~tessphot.photometry.scene.PRF_REACH` of the target
        that connects to it (WARNING, ``AP_FOOT``), when that part reaches no side the
        stamp could still grow on. None for a target saturated on its own pixel.
        """
        level = self._saturation_level
        if not image[pixel] < level:
            return None
        (r0, r1, c0, c1), (lo_r, hi_r, lo_c, hi_c) = self.target.stamp, self.target.max_stamp
        open_sides = [
            side
            for side, grows in zip(SIDES, (r0 > lo_r, r1 < hi_r, c0 > lo_c, c1 < hi_c), strict=True)
            if grows
        ]
        # Another star's saturated pixels (its bleed column) are no light of the target's.
        with np.errstate(invalid="ignore"):
            unsaturated = mask & ~(image >= level)
        cut = footprint_cut(unsaturated, pixel, PRF_REACH, sides=open_sides)
        if cut is None:
            return None
        logger.warning(
            "TIC %d: the K2P2 mask runs on into other stars' light beyond the stamp %s: "
            "cut to the %d of its %d pixels within %d px of the target",
            self.starid,
            self.target.stamp,
            cut.sum(),
            mask.sum(),
            PRF_REACH,
        )
        self.footprint_cut = True
        self.k2p2_mask = cut
        if any(touched_sides(cut).values()):  # on the edge of the data
            cut, _ = self._at_data_edge(cut, image)
        return cut, STATUS.WARNING

    def _at_data_edge(self, mask: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, STATUS]:
        """The mask and status of an aperture that reaches the edge of the data.

        Sets :attr:`spill_reason` when the target's light spills off it.

        Bleed columns running off the data (a pixel of the mask on that edge at
        :data:`SPILL_EDGE_FRACTION` of a full pixel or more) lose charge in amounts that
        change with the pointing. With ``trim_spilling_columns`` those columns (and one on
        either side) leave the mask: every column left keeps its charge, so the motion
        correction holds for the rest (:attr:`trimmed_columns`, ``AP_TRIM``). Otherwise, or
        when nothing of the target's core would be left, the light spills. It also spills
        when the mask's light on the edge exceeds ``choice.edge_flux`` of the catalogue flux
        (the original's criterion). Where only the PRF's wings reach beyond the data, the
        motion correction, which integrates the PRF over the aperture, accounts for them:
        the aperture is OK. Without the motion correction: WARNING.
        """
        s = self.settings
        edge_pixels = np.zeros_like(mask)
        edge_pixels[[0, -1], :] = True
        edge_pixels[:, [0, -1]] = True
        with np.errstate(invalid="ignore"):
            spilling = mask & edge_pixels & (image >= SPILL_EDGE_FRACTION * SATURATED_RATE)
        if spilling.any() and s.aperture.trim_spilling_columns and self._motion_correction_applies:
            columns = np.flatnonzero(ndimage.binary_dilation(spilling.any(axis=0)))
            trimmed = mask.copy()
            trimmed[:, columns] = False
            if trimmed.any():
                mask, spilling = trimmed, trimmed & spilling
                self.trimmed_columns = int(columns.size)
                logger.info(
                    "TIC %d: %d columns of bleeding off the data left out of the aperture",
                    self.starid,
                    columns.size,
                )
        edge = mask_diagnostics(mask, image)["edge_flux"] / tmag_to_flux(self.target.tmag)
        if spilling.any():
            self.spill_reason = "a bleed column runs off the data"
        elif edge > s.choice.edge_flux and not self.trimmed_columns:
            self.spill_reason = f"{edge:.1%} of the flux on the data edge"
        if self.spill_reason is None and self._motion_correction_applies:
            logger.info(
                "TIC %d: the aperture reaches the edge of the data; the motion correction "
                "accounts for the PRF's light beyond it (%.2g of the flux on the edge)",
                self.starid,
                edge,
            )
            return mask, STATUS.OK
        logger.warning(
            "TIC %d: the aperture reaches the edge of the data and cannot grow", self.starid
        )
        return mask, STATUS.WARNING

    def do_photometry(self) -> STATUS:
        """Find the aperture and extract the light curve."""
        mask, status = self._find_mask()
        self.k2p2_mask = mask
        if not mask.any():
            raise PhotometryError(f"TIC {self.starid}: no collected pixel around the target")
        row, col = self.target.stamp_position
        pixel = (int(math.floor(row + 0.5)), int(math.floor(col + 0.5)))
        optimise = self.settings.aperture.optimise and not self.minimum_aperture_used
        # Columns trimmed off a mask (a bleed running off the data) must stay out.
        reaches = optimise and not self.trimmed_columns
        reach = self.settings.aperture.optimise_reach if reaches else 0
        box = _reaching_box(mask, pixel, reach)
        blocks = self.target.block_reader(box)

        if optimise:
            optimised = optimise_mask(
                self.target,
                mask,
                box,
                blocks,
                pixel,
                saturation_level=self._saturation_level,
                motion_corrected=self._motion_correction_applies,
                reach=reach,
                others_saturated=self.footprint_cut,
            )
            if optimised is not None:
                mask = optimised
                self.optimised = True
        self.final_mask = mask

        # -- the light curve, block by block in time (bounded memory) --------------------
        n = self.target.source.time.size
        flux, flux_err, flux_bkg, centroid_row, centroid_col, quality, used = self._extract(
            mask, box, blocks
        )
        # -- the pointing motion: light moving in and out of the fixed aperture ----------
        self.light = self._aperture_light(mask)
        if self._motion_correction_applies:
            flux, scale = self.light.corrected(flux)
            flux_err = flux_err * scale
            self.motion_corrected = True
        self._background_used = used >= self.settings.aperture.background_used_fraction * n
        self.set_lightcurve(flux, flux_err, flux_bkg, quality, centroid_row, centroid_col)

        # -- contamination and neighbours ----------------------------------------------
        cat = self.target.catalog
        self.contamination = self.light.contamination
        if not math.isfinite(self.contamination):
            raise PhotometryError(f"TIC {self.starid}: none of the target's light in the mask")
        self.skip_targets = skip_targets(
            mask, cat["starid"], cat["row"], cat["column"], self.starid
        )
        self.method_keywords = {
            **self.k2p2.header_keywords(),
            "AP_CONT": (self.contamination, "AP contamination"),
            "AP_MCORR": (self.motion_corrected, "flux corrected for the pointing motion"),
            "AP_MPOS": (self.positions_fitted, "target positions fitted (saturated target)"),
            "AP_TRIM": (self.trimmed_columns, "columns bleeding off the data left out"),
            "AP_PRF": (self.target.prf.short_name, "the motion correction's PRF"),
            "AP_OPTIM": (self.optimised, "aperture optimised for the 1-h noise"),
            "AP_K2PIX": (int(self.k2p2_mask.sum()), "pixels in the K2P2 mask"),
            "AP_OUTK2": (int((mask & ~self.k2p2_mask).sum()), "aperture pixels beyond it"),
            "AP_MINAP": (self.minimum_aperture_used, "minimum aperture used"),
            "AP_FOOT": (self.footprint_cut, "K2P2 mask cut to the target's footprint"),
        }
        if self.switch_reason:
            self.method_keywords["AP_WHY"] = (
                self.switch_reason[:SWITCH_REASON_LENGTH],
                "automatic fallback",
            )
        return status

    def _extract(self, mask: np.ndarray, box: tuple[int, int, int, int], blocks) -> tuple:
        """The aperture's light curve, block by block in time (bounded memory).

        Returns
        -------
        flux, flux_err, flux_bkg, centroid_row, centroid_col, quality : ndarray
            The light-curve columns.
        used : ndarray of int
            How many cadences used each pixel of the stamp for the background.
        """
        r0, r1, c0, c1 = box
        n = self.target.source.time.size
        sub = mask[r0:r1, c0:c1]
        rows, cols = np.nonzero(sub)
        rows = rows + r0 + self.target.stamp[0]
        cols = cols + c0 + self.target.stamp[2]
        flux, flux_err, flux_bkg = np.empty(n), np.empty(n), np.empty(n)
        centroid_row, centroid_col = np.empty(n), np.empty(n)
        shenanigans = np.zeros(n, dtype=bool)
        used = np.zeros(self.target.stamp_shape, dtype=np.int64)
        names = ("images", "images_err", "backgrounds", "pixel_flags")
        for t0, t1, cubes in blocks(names):
            pixels = cubes["images"][:, sub].astype(np.float64)
            flux[t0:t1] = pixels.sum(axis=1)
            flux_err[t0:t1] = np.sqrt((cubes["images_err"][:, sub].astype(np.float64) ** 2).sum(1))
            flux_bkg[t0:t1] = cubes["backgrounds"][:, sub].astype(np.float64).sum(axis=1)
            weights = np.clip(np.nan_to_num(pixels), 0.0, None)
            total = weights.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                centroid_row[t0:t1] = np.where(total > 0, weights @ rows / total, np.nan)
                centroid_col[t0:t1] = np.where(total > 0, weights @ cols / total, np.nan)
            flags = cubes["pixel_flags"]
            shenanigans[t0:t1] = (flags[:, mask] & PixelFlags.BackgroundShenanigans).any(axis=1)
            used += ((flags & PixelFlags.NotUsedForBackground) == 0).sum(axis=0)
        centroid_row[~np.isfinite(flux)] = np.nan
        centroid_col[~np.isfinite(flux)] = np.nan
        quality = np.where(shenanigans, QUALITY_BACKGROUND_SHENANIGANS, 0).astype(np.int32)
        return flux, flux_err, flux_bkg, centroid_row, centroid_col, quality, used

    @property
    def saturated(self) -> bool:
        """Whether the target is saturated (from the data, not the catalogue magnitude).

        A pixel of its K2P2 mask in the average image reaches ``saturation_fraction`` of a
        full pixel.
        """
        if self.k2p2_mask is None:
            return False
        with np.errstate(invalid="ignore"):
            return bool((self.k2p2_mask & (self.target.sumimage >= self._saturation_level)).any())

    @property
    def _saturation_level(self) -> float:
        """A pixel this bright is saturated: ``saturation_fraction`` of a full pixel [e-/s]."""
        return self.settings.saturation_fraction * SATURATED_RATE

    @cached_property
    def _motion_correction_applies(self) -> bool:
        """Whether to correct the flux for the motion.

        Asked for (for a saturated target also ``motion_correction_saturated``), and a PRF
        good enough for it (:attr:`prf_trusted`). Decided once per target (its log line is
        given once).
        """
        if not self.settings.aperture.motion_correction:
            return False
        if self.saturated and not self.settings.aperture.motion_correction_saturated:
            return False
        if not self.target.prf_trusted:
            logger.info(
                "TIC %d: no motion correction with the analytic PRF on real data (set "
                "[photometry] prf_dir to the SPOC PRF models)",
                self.starid,
            )
            return False
        return True

    def _fitted_positions(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The saturated target's positions per cadence from a linear PSF fit of its wings.

        With fitted shifts (:class:`LinPSFPhotometry`); None when that fit has no shifts
        or fails.

        A saturated star's large aperture has much of its light on its edge, so the jitter
        model's errors (~0.002 px, changing at every momentum dump) would move its light by
        1e-5-1e-4; the wings' fit follows the star to ~0.0005 px.
        """
        wings = LinPSFPhotometry(self.target, self.settings)
        try:
            fitted = wings.fitted_positions()
        except TessphotError as err:
            logger.info(
                "TIC %d: no fitted positions for the motion correction: %s", self.starid, err
            )
            return None
        if fitted is None:
            return None
        rows, cols = fitted
        known = np.isfinite(rows) & np.isfinite(cols)
        return np.where(known, rows, self.target.row_t), np.where(known, cols, self.target.col_t)

    def _aperture_light(self, mask: np.ndarray) -> ApertureLight:
        """The light of the target and of the catalogued stars near the stamp in ``mask``.

        Per cadence (positions from the jitter model, the saturated target's from
        :meth:`_fitted_positions`; fluxes from the catalogue).
        """
        idx = self.target.stars_reaching(self.target.stamp_origin, self.target.stamp_shape)
        stars = self.target.source.stars
        rows, cols = self.target.source.motion.positions(
            stars.row[idx], stars.col[idx], self.target.source.time
        )
        self.positions_fitted = False
        if (
            self.saturated
            and self.settings.aperture.motion_positions_saturated
            and self._motion_correction_applies
        ):
            fitted = self._fitted_positions()
            if fitted is not None:
                rows[:, 0], cols[:, 0] = fitted
                self.positions_fitted = True
        return aperture_light(
            self.target.prf,
            mask,
            self.target.stamp_origin,
            stars.starid[idx],
            tmag_to_flux(stars.tmag[idx]),
            rows,
            cols,
            stars.row[idx],
            stars.col[idx],
            self.target.source.good,
            halos=self.target.halos,
            tmag=stars.tmag[idx],
        )

    def aperture_image(self) -> np.ndarray:
        """``APERTURE`` bits: collected, photometric, centroid, background pixels, CCD output."""
        return aperture_image(
            self.target.stamp_shape,
            self.target.stamp_origin,
            collected=np.isfinite(self.target.sumimage),
            photometric=self.final_mask,
            background=self._background_used,
            centroid=self.final_mask,
        )


def _reaching_box(mask: np.ndarray, pixel: tuple[int, int], reach: int) -> tuple[int, ...]:
    """The mask's bounding box grown to the pixels within ``reach`` of ``pixel`` (clipped)."""
    r0, r1, c0, c1 = bounding_box(mask)
    if reach <= 0:
        return r0, r1, c0, c1
    h, w = mask.shape
    return (
        max(0, min(r0, pixel[0] - reach)),
        min(h, max(r1, pixel[0] + reach + 1)),
        max(0, min(c0, pixel[1] - reach)),
        min(w, max(c1, pixel[1] + reach + 1)),
    )
