"""What every photometry method shares: :class:`PhotometryMethod`.

A method is built from a :class:`tessphot.photometry.target.Target` and its settings,
implements :meth:`PhotometryMethod.do_photometry` (which fills :attr:`~PhotometryMethod.columns`
and the final masks and returns a :class:`tessphot.tasks.STATUS`) and
:meth:`PhotometryMethod.aperture_image`; :meth:`PhotometryMethod.run` runs it and returns a
:class:`tessphot.photometry.result.MethodResult` with the diagnostics the task list stores
(§5.8 of the notes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from tessphot.config.photometry import photometry_settings
from tessphot.io.errors import TessphotError
from tessphot.lightcurve import (
    LightCurveColumns,
    StampImages,
    TableExtension,
    lightcurve_diagnostics,
    mask_diagnostics,
)
from tessphot.photometry.capture import capture_warnings
from tessphot.photometry.errors import PhotometryError
from tessphot.photometry.goodness import PRFGoodness
from tessphot.photometry.result import MethodResult, SpilledError
from tessphot.photometry.target import Target
from tessphot.tasks.status import HAS_LIGHTCURVE, STATUS

#: QUALITY bit of the TASOC corrector flags set where the background is suspect.
QUALITY_BACKGROUND_SHENANIGANS = 256
#: Most characters of the reason for an automatic switch of method kept in its header card
#: (``HALO_WHY``, ``PSF_WHY``, ``AP_WHY``; the card holds its comment too).
SWITCH_REASON_LENGTH = 46


class PhotometryMethod:
    """A photometry method on one target.

    Parameters
    ----------
    target : Target
        The star, its stamp and its pixel source.
    settings : mapping, optional
        The ``[photometry]`` settings.
    switch_reason : str, optional
        Why the automatic choice switched to this method (into its header).
    """

    #: Name of the method (``PHOTMET``).
    method = "base"

    def __init__(
        self,
        target: Target,
        settings: Mapping[str, Any] | None = None,
        *,
        switch_reason: str | None = None,
    ) -> None:
        self.target = target
        self.settings = photometry_settings(settings)
        self.switch_reason = switch_reason
        self.errors: list[str] = []
        self.skip_targets: list[int] = []
        self.columns: LightCurveColumns | None = None
        self.final_mask: np.ndarray | None = None
        self.contamination = math.nan
        self.method_keywords: dict[str, Any] = {}
        #: Why the target's light spills off the stamp or the data (None: it does not): the
        #: automatic choice then switches bright targets to the ``choice.spill_method``.
        self.spill_reason: str | None = None
        #: How well the PRF fit describes the target (methods that fit a PRF;
        #: :mod:`tessphot.photometry.goodness`): its cards ``PRFCHI2``, ``PRFCHI2T``,
        #: ``PRFDOF`` and the diagnostics' ``prf_chi2``.
        self.goodness: PRFGoodness | None = None

    @property
    def starid(self) -> int:
        """TIC number of the target."""
        return self.target.starid

    # -- the method ----------------------------------------------------------------------
    def do_photometry(self) -> STATUS:
        """Fill the light curve and the masks; return the status (implemented by methods)."""
        raise NotImplementedError

    def aperture_image(self) -> np.ndarray:
        """The ``APERTURE`` bitmask of the stamp (implemented by the methods)."""
        raise NotImplementedError

    def extensions(self) -> tuple[TableExtension, ...]:
        """Extra extensions of the light-curve file (none by default)."""
        return ()

    def settings_record(self) -> dict[str, Any]:
        """Every tunable of the photometry (written into the light-curve header)."""
        source = self.target.source
        return {
            "photometry": self.settings.to_dict(),
            "timing": source.timing.to_dict(),
            "background": source.background_record,
        }

    def set_lightcurve(
        self,
        flux: np.ndarray,
        flux_err: np.ndarray,
        flux_bkg: np.ndarray,
        quality: np.ndarray,
        centroid_row: np.ndarray,
        centroid_column: np.ndarray,
        cadenceno: np.ndarray | None = None,
    ) -> None:
        """Store the light curve.

        The method's flux columns with the star's barycentric times, the pixel quality and
        the position correction from the jitter model.
        """
        t = self.target
        time, timecorr = t.barycentric_times()
        self.columns = LightCurveColumns(
            time=time,
            timecorr=timecorr,
            cadenceno=t.source.cadenceno if cadenceno is None else cadenceno,
            flux=flux,
            flux_err=flux_err,
            flux_bkg=flux_bkg,
            quality=quality,
            pixel_quality=t.source.quality,
            centroid_row=centroid_row,
            centroid_column=centroid_column,
            pos_corr_row=t.row_t - t.row_ref,
            pos_corr_column=t.col_t - t.col_ref,
        )

    # -- running -------------------------------------------------------------------------
    def run(self) -> MethodResult:
        """Run the method and compute the diagnostics.

        Returns
        -------
        MethodResult

        Raises
        ------
        SpilledError
            When the target cannot be processed and its light spills off the stamp or the
            data (the reason in ``spill_reason``).
        tessphot.io.errors.TessphotError
            When the target cannot be processed.
        """
        with capture_warnings(self.errors):
            try:
                status = self.do_photometry()
                if status == STATUS.UNKNOWN:
                    raise ValueError("the photometry method returned the status UNKNOWN")
                status = STATUS(status)
                diagnostics = self._diagnostics(status)
            except TessphotError as err:
                if self.spill_reason and not isinstance(err, SpilledError):
                    raise SpilledError(str(err), self.spill_reason) from err
                raise
        has_lightcurve = status in HAS_LIGHTCURVE
        header_cards = dict(self.method_keywords)
        prf_chi2 = math.nan
        if self.goodness is not None:
            header_cards.update(self.goodness.header_cards())
            prf_chi2 = self.goodness.reduced
            diagnostics["prf_chi2"] = prf_chi2
        return MethodResult(
            method=self.method,
            status=status,
            columns=self.columns if has_lightcurve else None,
            images=self._images() if has_lightcurve else None,
            header_cards=header_cards,
            settings=self.settings_record(),
            diagnostics=diagnostics,
            skip_targets=list(self.skip_targets),
            contamination=self.contamination,
            spill_reason=self.spill_reason,
            switch_reason=self.switch_reason,
            errors=list(self.errors),
            prf_chi2=prf_chi2,
        )

    def _diagnostics(self, status: STATUS) -> dict[str, Any]:
        t = self.target
        diagnostics: dict[str, Any] = {"stamp": t.stamp, "stamp_resizes": t.stamp_resizes}
        if status in HAS_LIGHTCURVE:
            lc = self.columns
            if not np.any(np.isfinite(lc.flux)) or not np.any(np.isfinite(lc.flux_err)):
                raise PhotometryError(f"TIC {self.starid}: the light curve is all NaN")
            diagnostics.update(
                lightcurve_diagnostics(
                    lc.time,
                    lc.flux,
                    lc.flux_err,
                    lc.pixel_quality,
                    lc.centroid_row,
                    lc.centroid_column,
                )
            )
        if self.final_mask is not None:
            diagnostics.update(mask_diagnostics(self.final_mask, t.sumimage))
        return diagnostics

    def _images(self) -> StampImages:
        t = self.target
        return StampImages(
            sumimage=t.sumimage,
            aperture=t.source.merge_aperture(self.aperture_image(), t.stamp),
            stamp_origin=t.stamp_origin,
            wcs=t.source.wcs_header,
            extensions=self.extensions(),
        )
