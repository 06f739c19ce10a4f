"""The CBV file: written and read back, readable by astropy, SPOC-like keywords; the plot."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from astropy.io import fits

from tessphot.correct.cbv_file import plot_cbvs, read_cbv, read_cbvs, write_cbv
from tessphot.version import PIPELINE_NAME, __version__


def _assert_equal_sets(a, b):
    for f in dataclasses.fields(a):
        left, right = getattr(a, f.name), getattr(b, f.name)
        if isinstance(left, np.ndarray):
            if left.dtype.kind == "f":
                np.testing.assert_allclose(right, left, rtol=1e-6, atol=1e-9, equal_nan=True)
            else:
                np.testing.assert_array_equal(right, left)
        else:
            assert right == pytest.approx(left) if isinstance(left, float) else right == left


def test_round_trip(tmp_path, cbvs):
    path = write_cbv(tmp_path / "cbv" / "s0001-1-4_cbv.fits", cbvs)
    back = read_cbv(path)
    _assert_equal_sets(cbvs, back)
    assert not list(path.parent.glob("*.tmp*"))


def test_readable_by_astropy_with_spoc_like_keywords(tmp_path, cbvs):
    path = write_cbv(tmp_path / "cbv.fits", cbvs)
    with fits.open(path, checksum=True) as hdus:
        primary = hdus[0].header
        assert primary["ORIGIN"] == PIPELINE_NAME
        assert primary["PROCVER"] == __version__
        for key in ("TELESCOP", "INSTRUME", "SECTOR", "TSTART", "TSTOP", "DATE", "FILEVER"):
            assert key in primary
        assert primary["SECTOR"] == 1
        assert "TASOC" not in repr(primary) and "SPOC" not in repr(primary)
        table = hdus["CBV.141"]
        names = table.columns.names
        assert names[:3] == ["TIME", "CADENCENO", "GAP"]
        assert names[3:] == [f"VECTOR_{j + 1}" for j in range(cbvs.n_vectors)] + [
            f"SPIKE_{j + 1}" for j in range(cbvs.n_spikes)
        ]
        assert table.header["CAMERA"] == 1 and table.header["CCD"] == 4
        assert table.header["NVECTORS"] == cbvs.n_vectors
        assert table.header["HIERARCH CBV MAX_VECTORS"] == cbvs.settings["max_vectors"]
        assert np.array_equal(table.data["GAP"], cbvs.gap)


def test_several_sets_in_one_file(tmp_path, cbvs):
    other = dataclasses.replace(cbvs, cbv_area=142, spikes=cbvs.spikes[:, :0])
    path = write_cbv(tmp_path / "cbv.fits", [cbvs, other])
    assert [s.cbv_area for s in read_cbvs(path)] == [141, 142]
    assert read_cbv(path, cbv_area=142).n_spikes == 0
    with pytest.raises(KeyError, match="2 CBV sets"):
        read_cbv(path)
    with pytest.raises(ValueError, match="no CBV set"):
        write_cbv(tmp_path / "empty.fits", [])


def test_plot(tmp_path, cbvs):
    path = plot_cbvs(cbvs, tmp_path / "cbv.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
