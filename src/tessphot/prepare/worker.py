"""The prepare stage's work on one whole frame, run in a worker process.

A worker reads one FFI (or one frame of a TESScut cube) into its slot of the ring of frames
(:mod:`tessphot.prepare.shared_arrays`), flags its pixels, estimates its background mesh and
measures the reference stars' centroids; only these small results go back to the main
process. What every frame shares (the settings, the starlight model, the reference stars,
the ring and the block of frames) is handed to each worker once, as the context of
:func:`init_worker`. The later steps of a frame are :mod:`tessphot.prepare.encode`'s.
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.wcs import FITSFixedWarning
from threadpoolctl import threadpool_limits

from tessphot.geometry import shifted_wcs_header
from tessphot.io import FFIError
from tessphot.prepare import background as bg
from tessphot.prepare import background_small as small
from tessphot.prepare import codec
from tessphot.prepare.flags import PixelFlags, manual_exclude
from tessphot.prepare.frames import load_frame
from tessphot.prepare.heap import keep_large_allocations
from tessphot.prepare.motion import measure_centroids
from tessphot.prepare.starlight import pointing_shift, shifted

_CONTEXT: dict = {}
#: Threads of the numerical libraries (BLAS) per worker: each worker is one core's work.
WORKER_THREADS = 1


def init_worker(context: dict, *, limit_threads: bool = True) -> None:
    """Set the context shared by every frame of a worker process.

    ``limit_threads``: limit the numerical libraries to :data:`WORKER_THREADS` threads, and
    keep large arrays on the heap, for the rest of the process (a worker process; the main
    process does both itself, for the run only).

    Parameters
    ----------
    context : dict
        ``background_settings``, ``shape``, ``origin``, ``camera``, ``ccd``, ``starlight``,
        ``star_model`` (the stars of the background fit, None for the mesh estimate),
        ``ref_rows``, ``ref_cols``, ``centroid_half``; the ``ring`` and ``block`` arrays,
        and the ``constants`` (the starlight model and the dither's plane, shared; they
        replace ``starlight``);
        ``storage`` settings, the file's ``chunks``, ``compression`` and dither sequences
        (``dither_time``, ``dither_rows``, ``dither_cols``; None when lossless).
    """
    _CONTEXT.clear()
    _CONTEXT.update(context)
    settings = context["background_settings"]
    _CONTEXT["geometry"] = bg.MeshGeometry(context["shape"], settings.box_size, settings.binning)
    constants = context.get("constants")
    if constants is not None:  # shared by the workers (stream.shared_constants)
        for name in ("starlight", "dither_plane"):
            if name in constants.arrays:
                _CONTEXT[name] = constants[name]
    if _CONTEXT.get("dither_plane") is None and context.get("dither_rows") is not None:
        rows, cols = context["dither_rows"], context["dither_cols"]
        _CONTEXT["dither_plane"] = codec.dither_plane(rows, cols)
    warnings.simplefilter("ignore", FITSFixedWarning)
    if limit_threads:
        threadpool_limits(WORKER_THREADS)
        keep_large_allocations()  # the next frame reuses this one's memory (tessphot.prepare.heap)


def worker_context() -> dict:
    """The context of this worker process (:func:`init_worker`)."""
    return _CONTEXT


def process_frame(task: tuple[int, str, int | None, int | None, float, float, int]) -> dict:
    """Read a frame into its ring slot; estimate its background mesh and the centroids.

    Parameters
    ----------
    task : tuple
        ``(index, path, cube_index, cadenceno, tstart, time, slot)`` of the frame.

    Returns
    -------
    dict
        ``index`` and either ``error`` or the frame's ``reasons``, ``excluded`` (every
        pixel excluded: only its flags are in the slot) and else its background ``mesh``
        and ``mesh_err``, ``centroids`` and ``wcs``; the image, uncertainty and flags are
        in the ring's slot.
    """
    index, path, cube_index, cadenceno, tstart, time, slot = task
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
    ring = ctx["ring"]
    flags = ring["flags"][slot]
    flags[...] = 0
    flags[exclude] |= PixelFlags.ManualExclude
    result = {"index": index, "reasons": reasons, "excluded": bool(exclude.all())}
    if result["excluded"]:
        return result
    if ctx.get("star_model") is not None:
        est = small.fit_background(image, uncert, ctx["star_model"], settings, exclude=exclude)
    else:
        starlight = ctx["starlight"]
        if starlight is not None and settings.follow_pointing:
            shift = pointing_shift(
                image, ctx["ref_rows"], ctx["ref_cols"], origin, ctx["centroid_half"]
            )
            starlight = shifted(starlight, shift)
        est = bg.estimate_background(image, uncert, starlight, settings, exclude=exclude)
    flags[est.not_used] |= PixelFlags.NotUsedForBackground
    flags[est.anomalous] |= PixelFlags.BackgroundShenanigans
    model = est.model
    if not np.isfinite(model).all():  # no estimate: NaN model
        model = np.nan_to_num(model)
    centroids = measure_centroids(
        image,
        ctx["ref_rows"],
        ctx["ref_cols"],
        origin,
        ctx["centroid_half"],
        background=model,
    )
    image[exclude] = np.nan
    mesh = est.mesh.astype(np.float32)
    mesh_err = est.mesh_err.astype(np.float32)
    ring["image"][slot] = image
    if ring["uncert"].dtype == np.float16:  # see stream.ring_layout
        codec.round_errors(uncert, codec.FLOAT16_MANTISSA_BITS, out=ring["uncert"][slot])
    else:
        ring["uncert"][slot] = uncert
    del est, model, exclude
    result.update(
        mesh=mesh,
        mesh_err=mesh_err,
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
        text = shifted_wcs_header(ffi.wcs, ffi.origin[0], ffi.origin[1]).tostring()
    except Exception:  # a WCS that cannot be written is left out (the frame stays usable)
        return ""
    _WCS_STRING.update(key=key, wcs=ffi.wcs, text=text)
    return text
