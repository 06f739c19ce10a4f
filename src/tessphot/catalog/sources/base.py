"""What every catalog source delivers: batches of TIC stars at the TIC epoch, cleaned.

A source gets the footprints of the CCDs being built and yields ``(index, StarBatch)`` pairs:
the stars that may lie in footprint ``index``. Sources may return more stars than needed (a
bounding cap, a database polygon); the catalog builder applies the exact footprint test, after
proper motion, and the faint limit.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tessphot.catalog.errors import CatalogError
from tessphot.catalog.footprint import Footprint
from tessphot.catalog.sphere import radec_to_xyz

log = logging.getLogger(__name__)

#: TIC column names accepted for each field (compared case-insensitively); the first is the
#: TIC's own (MAST), the others the TASOC database's and the catalog files'.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "starid": ("ID", "starid", "TIC", "TICID", "tic_id"),
    "ra": ("ra", "ra_J2000"),
    "dec": ("dec", "decl", "decl_J2000", "dec_J2000"),
    "pm_ra": ("pmRA", "pm_ra"),
    "pm_dec": ("pmDEC", "pm_decl", "pm_dec"),
    "tmag": ("Tmag",),
    "teff": ("Teff",),
    "disposition": ("disposition",),
}
#: Fields a source must provide.
REQUIRED = ("starid", "ra", "dec", "tmag")

#: TIC dispositions kept besides NULL, by default. The original kept ``disposition IS NULL OR
#: disposition = 3`` from its integer-coded copy of the TIC; with the codes in alphabetical
#: order (ARTIFACT 1, DUPLICATE 2, SPLIT 3) that is "SPLIT" in the TIC's published text.
#: ARTIFACT and DUPLICATE rows are dropped.
DEFAULT_KEEP_DISPOSITIONS = ("SPLIT", "3")


@dataclass
class StarBatch:
    """TIC stars at the TIC epoch (J2000 positions).

    Attributes
    ----------
    starid : ndarray of int64
        TIC IDs.
    ra, dec : ndarray of float64
        Positions at epoch J2000.0 [deg].
    pm_ra, pm_dec : ndarray of float64
        Proper motions [mas/yr] (``pm_ra`` includes cos dec); NaN where unknown.
    tmag : ndarray of float64
        TESS magnitude.
    teff : ndarray of float64
        Effective temperature [K]; NaN where unknown.
    disposition : ndarray of str
        TIC disposition, upper case; '' where NULL.
    """

    starid: NDArray[np.int64]
    ra: NDArray[np.float64]
    dec: NDArray[np.float64]
    pm_ra: NDArray[np.float64]
    pm_dec: NDArray[np.float64]
    tmag: NDArray[np.float64]
    teff: NDArray[np.float64]
    disposition: NDArray[np.str_]

    def __len__(self) -> int:
        return int(self.starid.size)

    def __getitem__(self, index) -> StarBatch:
        return StarBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def empty(cls) -> StarBatch:
        """A batch without stars."""
        return cls(np.empty(0, np.int64), *(np.empty(0) for _ in range(6)), np.empty(0, str))

    @classmethod
    def concatenate(cls, batches: Iterable[StarBatch]) -> StarBatch:
        """One batch of all stars of ``batches``."""
        batches = list(batches)
        if not batches:
            return cls.empty()
        return cls(
            **{f.name: np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(cls)}
        )


def resolve_columns(names: Sequence[str], what: str) -> dict[str, str]:
    """Map the fields of :data:`COLUMN_ALIASES` to the column names present in a table.

    Raises
    ------
    CatalogError
        When a required field has no column.
    """
    lower = {name.lower(): name for name in names}
    found = {}
    for field_, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias.lower() in lower:
                found[field_] = lower[alias.lower()]
                break
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        wanted = "; ".join(f"{f}: one of {', '.join(COLUMN_ALIASES[f])}" for f in missing)
        raise CatalogError(f"{what}: missing TIC column(s) ({wanted})")
    return found


def _float_column(values: ArrayLike, name: str, what: str) -> NDArray[np.float64]:
    """A column as float64 with NaN for missing values (masked, None, empty strings)."""
    if np.ma.isMaskedArray(values):
        data = np.ma.getdata(values)
        mask = np.ma.getmaskarray(values)
    else:
        data = np.asarray(values)
        mask = np.zeros(data.shape, dtype=bool)
    if data.dtype.kind in "fiub":
        out = data.astype(np.float64)
    else:
        out = np.empty(data.shape, dtype=np.float64)
        for i, value in enumerate(data.tolist()):
            if value is None or (isinstance(value, bytes | str) and not value.strip()):
                out[i] = np.nan
                continue
            try:
                out[i] = float(value)
            except (TypeError, ValueError):
                raise CatalogError(f"{what}: column {name}: not a number: {value!r}") from None
    out[mask] = np.nan
    return out


def _id_column(values: ArrayLike, name: str, what: str) -> NDArray[np.int64]:
    """TIC IDs as int64 (MAST returns them as strings)."""
    if np.ma.isMaskedArray(values) and np.ma.getmaskarray(values).any():
        raise CatalogError(f"{what}: column {name}: missing TIC IDs")
    data = np.asarray(np.ma.getdata(values))
    if data.dtype.kind in "iu":
        return data.astype(np.int64)
    try:
        if data.dtype.kind == "f":
            if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
                raise ValueError
            return data.astype(np.int64)
        if data.dtype.kind == "S":
            data = data.astype(str)
        return np.array([int(v) for v in data.tolist()], dtype=np.int64)
    except (TypeError, ValueError):
        raise CatalogError(f"{what}: column {name}: TIC IDs must be integers") from None


def _disposition_column(values: ArrayLike) -> NDArray[np.str_]:
    """Dispositions as upper-case text, '' for none."""
    if np.ma.isMaskedArray(values):
        mask = np.ma.getmaskarray(values)
        data = np.asarray(np.ma.getdata(values))
    else:
        data = np.asarray(values)
        mask = np.zeros(data.shape, dtype=bool)
    if data.dtype.kind in "fiu":
        numbers = data.astype(float)
        out = np.array(
            ["" if not np.isfinite(v) else str(int(v)) for v in numbers.tolist()], dtype=object
        )
    else:
        out = np.array(
            [
                ""
                if v is None
                else (v.decode() if isinstance(v, bytes) else str(v)).strip().upper()
                for v in data.tolist()
            ],
            dtype=object,
        )
    out[mask] = ""
    return out.astype(str)


def clean_columns(
    columns: Mapping[str, ArrayLike],
    names: Mapping[str, str],
    what: str,
    keep_dispositions: Sequence[str] | None = DEFAULT_KEEP_DISPOSITIONS,
) -> StarBatch:
    """Turn raw TIC columns into a :class:`StarBatch`.

    Converts IDs to integers and missing values to NaN, drops rows without position or Tmag
    (with a warning) and rows whose disposition is not NULL or in ``keep_dispositions``
    (None: keep every disposition).

    Parameters
    ----------
    columns : mapping
        Column name -> values (numpy, masked or object arrays) as read.
    names : mapping
        Field -> column name, from :func:`resolve_columns`.
    what : str
        Where the data came from, for messages.
    keep_dispositions : sequence of str or None
        Dispositions kept besides NULL (case-insensitive); None keeps all.

    Raises
    ------
    CatalogError
        For non-integer or missing IDs, non-numeric values, or declinations outside +-90.
    """
    starid = _id_column(columns[names["starid"]], names["starid"], what)
    values = {
        f: (
            _float_column(columns[names[f]], names[f], what)
            if f in names
            else np.full(starid.size, np.nan)
        )
        for f in ("ra", "dec", "pm_ra", "pm_dec", "tmag", "teff")
    }
    keep = np.isfinite(values["ra"]) & np.isfinite(values["dec"]) & np.isfinite(values["tmag"])
    if not np.all(keep):
        log.warning("%s: %d rows without position or Tmag skipped", what, int(np.sum(~keep)))
    bad_dec = keep & (np.abs(values["dec"]) > 90.0)
    if np.any(bad_dec):
        raise CatalogError(
            f"{what}: {int(bad_dec.sum())} declinations outside -90..90 deg "
            f"(e.g. TIC {starid[bad_dec][0]}: {values['dec'][bad_dec][0]})"
        )
    if "disposition" in names:
        disposition = _disposition_column(columns[names["disposition"]])
    else:
        disposition = np.full(starid.size, "", dtype="<U1")
    if keep_dispositions is not None:
        allowed = {""} | {str(d).strip().upper() for d in keep_dispositions}
        kept = np.isin(disposition, list(allowed))
        if not np.all(kept[keep]):
            log.debug("%s: %d rows dropped for their disposition", what, int(np.sum(keep & ~kept)))
        keep &= kept
    return StarBatch(
        starid=starid[keep],
        ra=np.mod(values["ra"][keep], 360.0),
        dec=values["dec"][keep],
        pm_ra=values["pm_ra"][keep],
        pm_dec=values["pm_dec"][keep],
        tmag=values["tmag"][keep],
        teff=values["teff"][keep],
        disposition=disposition[keep],
    )


class CatalogSource(abc.ABC):
    """A place TIC stars come from.

    Attributes
    ----------
    name : str
        ``file``, ``postgres`` or ``mast``.
    scan : bool
        True when the source reads everything once whatever the footprints (a file): all
        CCDs are then built in one pass. Otherwise footprints are queried one at a time.
    """

    name: str = ""
    scan: bool = False

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the stars come from (recorded in the catalog's metadata)."""

    @abc.abstractmethod
    def stream(
        self, footprints: Sequence[Footprint], margin_deg: float, faint_limit: float | None
    ) -> Iterator[tuple[int, StarBatch]]:
        """Yield ``(index into footprints, stars)`` for stars that may lie in a footprint.

        Parameters
        ----------
        footprints : sequence of Footprint
            The CCDs being built.
        margin_deg : float
            Widen the footprints by this much [deg] (the stars' motion since J2000).
        faint_limit : float or None
            Stars fainter than this (Tmag) are not needed; a source may drop them early.
        """

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release connections and files."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cap_selection(
    ra: NDArray, dec: NDArray, caps: Sequence[tuple[NDArray, float]]
) -> Iterator[tuple[int, NDArray[np.bool_]]]:
    """For each cap (centre unit vector, radius [rad]), the stars inside it."""
    xyz = radec_to_xyz(ra, dec)
    for index, (centre, radius) in enumerate(caps):
        yield index, xyz @ centre >= np.cos(radius)
