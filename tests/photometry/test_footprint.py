"""A K2P2 mask running on into a saturated star's light: cut to the target's footprint."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from astropy.io import fits

from tessphot.constants import FIRST_SCIENCE_CCD_COLUMN, FIRST_SCIENCE_CCD_ROW, SATURATED_RATE
from tessphot.lightcurve import ApertureBits
from tessphot.photometry.scene import PRF_REACH
from tessphot.photometry.stamps import footprint_cut, touched_sides
from tessphot.tasks import STATUS

#: The bright star (TIC, Tmag, row, column) and the faint one 14 px above it.
BRIGHT = (900_000_001, 2.3, 1020.0, 1023.0)
FAINT = (900_000_002, 13.0, 1034.0, 1025.0)


def test_footprint_cut_keeps_the_connected_part_near_the_pixel():
    mask = np.zeros((30, 20), dtype=bool)
    mask[2:28, 8:12] = True  # a column of light running through the stamp
    mask[14, 0:8] = True  # and a branch to the left edge
    cut = footprint_cut(mask, (15, 10), 3)
    assert cut is not None and cut[15, 10]
    rows, cols = np.nonzero(cut)
    assert rows.min() == 12 and rows.max() == 18 and cols.min() == 7 and cols.max() == 11
    assert not cut[14, 0:7].any() and cut[14, 7]
    assert not any(touched_sides(cut).values())
    # A part near the pixel but not connected to it is left out.
    mask[16, 14] = True
    assert not footprint_cut(mask, (15, 10), 5)[16, 14]
    # Still reaching a side: None, unless that side may be touched.
    assert footprint_cut(mask, (15, 10), 10) is None
    assert footprint_cut(mask, (15, 10), 10, sides=("down", "up")) is not None
    # Not on the mask: None.
    assert footprint_cut(mask, (0, 0), 3) is None


@pytest.fixture(scope="module")
def bright_neighbour(tmp_path_factory):
    """A 128x128 px, 24-cadence sector: a Tmag-2.3 star and a Tmag-13 star 14 px from it."""
    from tessphot.config import load_settings
    from tessphot.config.simulate import SimulationConfig
    from tessphot.demo import prepare_simulated
    from tessphot.evaluation.simulate.sector import simulate_sector

    folder = tmp_path_factory.mktemp("bright_neighbour")
    config = SimulationConfig(
        sector=1,
        camera=1,
        ccd=4,
        size=128,
        cadences=24,
        stars=0,
        bright=0,
        seed=3,
        variable_fraction=0.0,
        extra_stars=[BRIGHT, FAINT],
    )
    simulate_sector(config, folder, progress=False)
    prepare_simulated(folder, load_settings(), progress=False, workers=1)
    return folder


def test_a_mask_running_into_a_saturated_star_is_cut(bright_neighbour):
    """With two stamp growths allowed, the faint star's K2P2 mask still runs on into the
    bright star's light: instead of an ERROR (too many stamp resizes), the mask is cut to
    the target's footprint and the aperture leaves out the bright star's saturated pixels."""
    from tessphot.runner import run_photometry

    out = bright_neighbour / "lightcurves"
    report = run_photometry(
        bright_neighbour,
        out,
        constraints={"starid": [FAINT[0]]},
        overwrite=True,
        settings={"aperture": {"max_attempts": 2}},
    )
    assert report.counts == {"WARNING": 1}
    with sqlite3.connect(bright_neighbour / "todo.sqlite") as db:
        status, path, errors = db.execute(
            "SELECT t.status, d.lightcurve, d.errors FROM todolist t JOIN diagnostics d "
            "USING (priority) WHERE t.starid = ?",
            (FAINT[0],),
        ).fetchone()
    assert status == STATUS.WARNING.value
    assert "cut to the" in errors and "within 7 px of the target" in errors
    with fits.open(bright_neighbour / path) as hdul:
        assert hdul[0].header["AP_FOOT"] is True
        aperture = hdul["APERTURE"].data
        image = hdul["SUMIMAGE"].data
        r0, c0 = hdul["APERTURE"].header["CRVAL2P"], hdul["APERTURE"].header["CRVAL1P"]
        flux = hdul["LIGHTCURVE"].data["FLUX_RAW"]
    used = (aperture & ApertureBits.PHOTOMETRIC) != 0
    rows, cols = np.nonzero(used)
    assert 3 <= used.sum() <= (2 * PRF_REACH + 1) ** 2
    assert not (used & (image >= 0.9 * SATURATED_RATE)).any()
    # Within the PRF's reach of the target (the stamp's origin from its CCD pixel).
    target_row = FAINT[2] - (r0 - FIRST_SCIENCE_CCD_ROW)
    target_col = FAINT[3] - (c0 - FIRST_SCIENCE_CCD_COLUMN)
    assert np.all(np.abs(rows - target_row) <= PRF_REACH + 1)
    assert np.all(np.abs(cols - target_col) <= PRF_REACH + 1)
    assert np.isfinite(flux).sum() >= 20
