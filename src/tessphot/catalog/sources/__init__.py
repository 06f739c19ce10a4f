"""Where TIC stars come from: a file, a PostgreSQL/q3c database, or MAST.

Each source yields :class:`~tessphot.catalog.sources.base.StarBatch` objects of cleaned TIC
rows for the footprints being built (see :mod:`tessphot.catalog.sources.base`).
"""
