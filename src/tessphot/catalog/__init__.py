"""The catalog stage: TIC catalogs per sector, camera and CCD.

``catalog_sector{NNN}_camera{C}_ccd{D}.sqlite`` files in the original TASOC layout, with an
R*Tree for fast stamp queries, built from a TIC-like file, a PostgreSQL/q3c TIC database or
MAST. Main entry points (imported lazily, so ``import tessphot.catalog`` stays cheap):

- :func:`make_catalogs` -- build the catalogs of a sector;
- :class:`CatalogDB` -- read one; :meth:`CatalogDB.stars_in_box` finds the stars of a stamp;
- :func:`catalog_path` -- where a catalog lives in an input folder;
- :class:`FileSource`, :class:`PostgresSource`, :class:`MastSource` -- the sources;
- :class:`CatalogError` -- what goes wrong, said clearly.
"""

from __future__ import annotations

from tessphot.catalog.errors import CatalogError

_LAZY = {
    "make_catalogs": "tessphot.catalog.make",
    "catalog_path": "tessphot.catalog.make",
    "CatalogDB": "tessphot.catalog.sqlite_catalog",
    "STAR_DTYPE": "tessphot.catalog.sqlite_catalog",
    "ccd_footprint": "tessphot.catalog.footprint",
    "FileSource": "tessphot.catalog.sources.file",
    "PostgresSource": "tessphot.catalog.sources.postgres",
    "MastSource": "tessphot.catalog.sources.mast",
    "load_db": "tessphot.catalog.sources.postgres_load",
}

__all__ = ["CatalogError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
