"""The prepare stage's work on one whole frame, run in a worker process.

A worker reads one FFI (or one frame of a TESScut cube), flags its pixels, estimates its
background mesh and measures the reference stars' centroids. What every frame shares (the
settings, the starlight model, the reference stars) is handed to each worker once, as the
context of :func:`init_worker`.
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.wcs import FITSFixedWarning

from tessphot.geometry import shift_wcs
from tessphot.io import FFIError
from tessphot.prepare import background as bg
from tessphot.prepare import background_small as small
from tessphot.prepare.flags import PixelFlags, manual_exclude
from tessphot.prepare.frames import load_frame
from tessphot.prepare.motion import measure_centroids

_CONTEXT: dict = {}


def init_worker(context: dict) -> None:
    """Set the context shared by every frame of a worker process.

    Parameters
    ----------
    context : dict
        ``background_settings``, ``shape``, ``origin``, ``camera``, ``ccd``, ``starlight``,
        ``star_model`` (the stars of the background fit, None for the mesh estimate),
        ``ref_rows``, ``ref_cols`` and ``centroid_half``.
    """
    _CONTEXT.clear()
    _CONTEXT.update(context)
    warnings.simplefilter("ignore", FITSFixedWarning)


def process_frame(task: tuple[int, str, int | None, int | None, float, float]) -> dict:
    """Everything that needs the whole frame: runs in a worker process.

    Parameters
    ----------
    task : tuple
        ``(index, path, cube_index, cadenceno, tstart, time)`` of the frame.

    Returns
    -------
    dict
        ``index`` and either ``error`` or the frame's ``reasons``, ``image``, ``uncert``,
        ``flags``, background ``mesh`` and ``mesh_err``,
        ``centroids`` and ``wcs`` (``image`` None for a wholly excluded frame).
    """
    index, path, cube_index, cadenceno, tstart, time = task
    ctx = _CONTEXT
    settings: bg.BackgroundSettings = ctx["background_settings"]
    shape, origin = ctx["shape"], ctx["origin"]
    try:
        ffi = load_frame(path, cube_index)
        if ffi.origin != origin or ffi.data.shape != shape:
            raise FFIError(path, f"region {ffi.origin} {ffi.data.shape} differs from the others")
    except (FFIError, OSError) as err:
        return {"index": index, "error": str(err)}
    image = ffi.data  # float32 throughout: 7 digits are ample for e-/s
    uncert = ffi.uncertainty
    exclude, reasons = manual_exclude(
        image,
        ctx["camera"],
        ctx["ccd"],
        cadenceno,
        tstart,
        time,
        origin,
        simulated=bool(ffi.header.get("SIMDATA", False)),
    )
    flags = np.zeros(shape, dtype=np.uint8)
    flags[exclude] |= PixelFlags.ManualExclude
    result = {"index": index, "reasons": reasons}
    if exclude.all():
        result.update(image=None, uncert=None, flags=flags)
        return result
    if ctx.get("star_model") is not None:
        est = small.fit_background(image, uncert, ctx["star_model"], settings, exclude=exclude)
    else:
        est = bg.estimate_background(image, uncert, ctx["starlight"], settings, exclude=exclude)
    flags[est.not_used] |= PixelFlags.NotUsedForBackground
    flags[est.anomalous] |= PixelFlags.BackgroundShenanigans
    centroids = measure_centroids(
        image - np.nan_to_num(est.model),
        ctx["ref_rows"],
        ctx["ref_cols"],
        origin,
        ctx["centroid_half"],
    )
    image[exclude] = np.nan
    result.update(
        image=image,
        uncert=uncert,
        flags=flags,
        mesh=est.mesh.astype(np.float32),
        mesh_err=est.mesh_err.astype(np.float32),
        centroids=centroids,
        wcs=science_wcs_string(ffi),
    )
    return result


#: The last WCS written and its string: the frames of a TESScut cube share one WCS object.
_WCS_STRING: dict = {}


def science_wcs_string(ffi) -> str:
    """The frame's WCS in science-area pixel coordinates, as a FITS header string.

    Parameters
    ----------
    ffi : tessphot.io.FFIImage
        The frame.

    Returns
    -------
    str
        The header string; empty when the WCS cannot be written (the frame stays usable).
    """
    key = (id(ffi.wcs), ffi.origin)
    if _WCS_STRING.get("key") == key and _WCS_STRING.get("wcs") is ffi.wcs:
        return _WCS_STRING["text"]
    try:
        text = shift_wcs(ffi.wcs, ffi.origin[0], ffi.origin[1]).to_header_string(relax=True)
    except Exception:  # a WCS that cannot be written is left out (the frame stays usable)
        return ""
    _WCS_STRING.update(key=key, wcs=ffi.wcs, text=text)
    return text
