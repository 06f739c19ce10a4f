"""Settings of the smaller stages: ``[catalog]``, ``[todo]`` and ``[demo]``."""

from __future__ import annotations

from dataclasses import dataclass

from tessphot.config.fields import Table, setting

#: Where the catalog stage reads the TIC (``[catalog] source``).
CATALOG_SOURCES = ("file", "postgres", "mast")


@dataclass(frozen=True)
class CatalogSettings(Table):
    """Settings of the catalog stage (docs/catalog.md; the library defaults are the same).

    Attributes
    ----------
    source : str
        Where the TIC is read: ``"file"``, ``"postgres"`` or ``"mast"``.
    buffer : float
        Buffer around the footprint [deg] (>= 0).
    faint_limit : float
        Fainter stars are left out [Tmag]; ``inf`` keeps all.
    ticver : str
        Version of the TIC (written into the catalog's settings).
    keep_dispositions : list of str
        TIC dispositions kept besides NULL.
    db_table : str
        The PostgreSQL table, ``TABLE`` or ``SCHEMA.TABLE``.
    db_connect_timeout : float
        Time allowed to connect to the database [s] (> 0).
    mast_tile_radius : float
        Radius of one MAST query [deg] (> 0).
    mast_retries : int
        Attempts per MAST query (>= 1).
    mast_backoff : float
        First wait between attempts [s], doubled after each (>= 0).
    """

    TABLE = "catalog"

    source: str = setting("file", choices=CATALOG_SOURCES)
    buffer: float = setting(0.2, unit="deg", ge=0)
    faint_limit: float = setting(19.0, unit="Tmag")
    ticver: str = setting("8.2")
    keep_dispositions: tuple[str, ...] = setting(["SPLIT", "3"])
    db_table: str = setting("tic")
    db_connect_timeout: float = setting(10.0, unit="s", gt=0)
    mast_tile_radius: float = setting(0.5, unit="deg", gt=0)
    mast_retries: int = setting(4, ge=1)
    mast_backoff: float = setting(5.0, unit="s", ge=0)


@dataclass(frozen=True)
class TodoSettings(Table):
    """Settings of the todo list (README "The stages").

    Attributes
    ----------
    faint_limit : float
        Targets brighter than this are listed [Tmag].
    halo_tmag_limit : float
        FFI targets at least this bright get method ``halo`` (the original's rule) [Tmag].
    methods_file : str or None
        Override file of the methods, in the original's format (None: the one shipped with
        tessphot).
    exclude_file : str or None
        Override file of the excluded targets (None: the one shipped with tessphot).
    """

    TABLE = "todo"

    faint_limit: float = setting(15.0, unit="Tmag")
    halo_tmag_limit: float = setting(2.0, unit="Tmag")
    methods_file: str | None = setting(None, path=True)
    exclude_file: str | None = setting(None, path=True)


@dataclass(frozen=True)
class DemoSettings(Table):
    """Settings of the demo (``tessphot demo``): the simulated region it runs on.

    Attributes
    ----------
    sector : int
        Sector (>= 1).
    camera : int
        Camera (1-4).
    ccd : int
        CCD (1-4).
    size : int
        Side of the simulated region [px] (>= 1).
    cadences : int
        Number of cadences (>= 1).
    stars : int
        Stars of the power-law population on the region (>= 0).
    bright : int
        Extra bright, saturating stars (>= 0).
    seed : int
        Seed of the simulation.
    systematics : bool
        Add the simulator's common-mode systematics to the raw flux (thermal ramps, drifts,
        momentum-dump steps, residual scattered light), which the corrections remove.
    """

    TABLE = "demo"

    sector: int = setting(1, ge=1)
    camera: int = setting(1, ge=1, le=4)
    ccd: int = setting(4, ge=1, le=4)
    size: int = setting(200, unit="px", ge=1)
    cadences: int = setting(150, ge=1)
    stars: int = setting(300, ge=0)
    bright: int = setting(1, ge=0)
    seed: int = setting(182092046)
    systematics: bool = setting(True)
