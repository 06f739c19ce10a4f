"""Catalog source 4: the targets named in the headers of SPOC target pixel files.

The last resort when no TIC is at hand (offline, no catalog file): each TPF's primary header
gives its target's TIC, J2000 position, proper motion, Tmag and Teff
(:func:`tessphot.catalog.data.header_stars`). Only the targets are known, not their
neighbours: a WARNING says so, since the photometry then cannot account for contaminating
stars.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np

from tessphot.catalog.errors import CatalogError
from tessphot.catalog.footprint import Footprint
from tessphot.catalog.sources.base import CatalogSource, StarBatch, cap_selection

log = logging.getLogger(__name__)


class HeaderSource(CatalogSource):
    """The primary targets of TPFs, from their headers.

    Parameters
    ----------
    stars : StarBatch
        The targets (:func:`tessphot.catalog.data.header_stars`).
    files : sequence of str
        Names of the files they came from (for the metadata).

    Raises
    ------
    CatalogError
        When there is no target (no SPOC TPF among the files).
    """

    name = "header"
    scan = True

    def __init__(self, stars: StarBatch, files: Sequence[str]) -> None:
        if len(stars) == 0:
            raise CatalogError(
                "no catalog: no target in the headers of the files (TESScut cutouts name "
                "none): give a TIC-like file (--catalog-file) or use --source mast"
            )
        self.stars = stars
        self.files = list(files)
        log.warning(
            "Catalog from the headers of %d target pixel file(s): %d target(s) only, their "
            "neighbours are unknown (contamination is not accounted for); build a full "
            "catalog with --source file, postgres or mast for better photometry",
            len(self.files),
            len(stars),
        )

    def describe(self) -> str:
        """The TPF headers the targets came from."""
        return "TPF primary headers: " + ", ".join(self.files)

    def stream(
        self, footprints: Sequence[Footprint], margin_deg: float, faint_limit: float | None
    ) -> Iterator[tuple[int, StarBatch]]:
        """Yield the targets near each footprint (see :meth:`CatalogSource.stream`)."""
        stars = self.stars
        if faint_limit is not None:
            stars = stars[stars.tmag <= faint_limit]
        caps = [fp.bounding_cap(margin_deg) for fp in footprints]
        for index, inside in cap_selection(stars.ra, stars.dec, caps):
            if np.any(inside):
                yield index, stars[inside]
