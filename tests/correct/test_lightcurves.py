"""Reading a group's raw light curves onto one grid of cadences."""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.correct.lightcurves import RawLightCurve, align, read_raw
from tessphot.correct.store import lightcurve_tasks, open_corrections
from tessphot.io.errors import FileProblem
from tessphot.paths import stored_lightcurve


def _curve(cadences, flux, flags=None):
    cadences = np.asarray(cadences)
    return RawLightCurve(
        time=cadences / 48.0,
        cadenceno=cadences,
        flux=np.asarray(flux, dtype=float),
        flux_err=np.ones(cadences.size),
        pixel_quality=np.zeros(cadences.size, int) if flags is None else np.asarray(flags),
    )


def test_align_on_the_union_of_cadences():
    a = _curve([10, 11, 12, 14], [1, 2, 3, 4], flags=[0, 32, 0, 0])
    b = _curve([11, 12, 13], [5, 6, 7])
    data = align([a, b])
    np.testing.assert_array_equal(data.cadenceno, [10, 11, 12, 13, 14])
    np.testing.assert_array_equal(data.flux[0], [1, 2, 3, np.nan, 4])
    np.testing.assert_array_equal(data.flux[1], [np.nan, 5, 6, 7, np.nan])
    # A momentum dump: flagged, and not a good cadence for the fits.
    np.testing.assert_array_equal(data.dumps, [False, True, False, False, False])
    np.testing.assert_array_equal(data.good, [True, False, True, True, True])
    np.testing.assert_array_equal(data.flux[0, data.rows[0]], a.flux)


def test_read_raw_of_a_run(run_copy):
    with open_corrections(run_copy / "todo.sqlite") as conn:
        task = lightcurve_tasks(conn)[0]
    curve = read_raw(stored_lightcurve(task.lightcurve, run_copy, run_copy / "lightcurves"))
    assert curve.flux.size == curve.time.size == curve.cadenceno.size > 0
    assert np.isfinite(curve.flux).any()


def test_damaged_light_curve_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.fits.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    with pytest.raises(FileProblem, match="bad.fits.gz"):
        read_raw(bad)
    with pytest.raises(FileProblem, match="no such file"):
        read_raw(tmp_path / "missing.fits")
