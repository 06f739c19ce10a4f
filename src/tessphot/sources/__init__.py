"""Sources of pixels for the photometry: prepared FFI regions and target pixel files.

:class:`PixelSource` is the interface; :class:`FFISource` (a prepared CCD or TESScut
cutout, :mod:`tessphot.prepare.cube`) and :class:`TPFSource` (a target pixel file)
implement it. Sources are read once per process and cached (:func:`clear_cache`).
"""

from tessphot.sources.base import PixelSource
from tessphot.sources.blocks import BlockReader, Box
from tessphot.sources.cache import clear_cache
from tessphot.sources.errors import SourceError
from tessphot.sources.ffi import FFISource
from tessphot.sources.select import best_ffi_source, ffi_source, task_source
from tessphot.sources.stars import StarTable
from tessphot.sources.tpf import TPFSource, find_tpf, tpf_source

__all__ = [
    "BlockReader",
    "Box",
    "FFISource",
    "PixelSource",
    "SourceError",
    "StarTable",
    "TPFSource",
    "best_ffi_source",
    "clear_cache",
    "ffi_source",
    "find_tpf",
    "task_source",
    "tpf_source",
]
