"""Quality flags of TPFs transferred to the FFI cadences they overlap."""

from __future__ import annotations

import shutil

import numpy as np

from tessphot.io.tpf import read_tpf
from tessphot.prepare.tpf_quality import transfer_tpf_quality

TPF_NAME = "tess2018206045859-s0001-0000000025155310-0120-s_tp.fits.gz"


def test_transfer_to_overlapping_ffi_cadences(test_data, tmp_path):
    """The real TPF's first cadence is flagged 8 (Earth point): the FFI exposure around it
    gets the flag, the others do not; TPFs of other CCDs are not used."""
    shutil.copy(test_data / "tpf" / "tess25155310-s01-first-cadences.fits.gz", tmp_path / TPF_NAME)
    tpf = read_tpf(tmp_path / TPF_NAME, pixels=False)
    assert tpf.quality.tolist() == [8, 0, 0, 0, 0]
    # Spacecraft time of the TPF cadences, 1.979-s stamp offset removed.
    spacecraft = tpf.time - 1.979 / 86400 - tpf.timecorr
    step = 1 / 86400  # FFI exposures of 2 s around each TPF cadence, and one far away
    start = np.r_[spacecraft - step, spacecraft[-1] + 1.0]
    stop = np.r_[spacecraft + step, spacecraft[-1] + 1.0 + 1800 / 86400]
    quality, used = transfer_tpf_quality(tmp_path, 1, 4, 1, start, stop)
    assert used == 1
    assert quality.tolist() == [8, 0, 0, 0, 0, 0]
    quality, used = transfer_tpf_quality(tmp_path, 1, 4, 2, start, stop)
    assert used == 0 and not quality.any()
