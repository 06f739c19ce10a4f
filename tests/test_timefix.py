"""Time-stamp offset rules of early SPOC data releases."""

from __future__ import annotations

import pytest

from tessphot.timefix import stamp_error, time_offset_applies


def test_which_releases_are_affected():
    assert time_offset_applies(1, None) and time_offset_applies(26, "spoc-4.0.1")
    assert time_offset_applies(27, "spoc-4.0.14-20200108")
    assert not time_offset_applies(27, "spoc-4.0.26-20200323")
    assert time_offset_applies(29, "spoc-4.0.21-20200227")
    assert not time_offset_applies(30, None)
    with pytest.raises(ValueError, match="PROCVER"):
        time_offset_applies(29, None)


def test_offsets():
    assert stamp_error(30, None, 1, 1, "mid") == 0.0
    assert stamp_error(1, None, 1, 1, "start") == pytest.approx(1.969)
    assert stamp_error(1, None, 1, 1, "mid") == pytest.approx(1.979)
    assert stamp_error(1, None, 1, 1, "end") == pytest.approx(1.989)
    # FFIs: staggered readout per camera and CCD.
    assert stamp_error(1, None, 4, 4, "mid") == pytest.approx(1.979 - 1.0 - 0.06)
    assert stamp_error(1, None, 4, 4, "mid", datatype="tpf") == pytest.approx(1.979)
    assert stamp_error(29, "spoc-4.0.20-20200220", 2, 1, "mid") == pytest.approx(1.979)
    with pytest.raises(ValueError, match="timepos"):
        stamp_error(1, None, 1, 1, "middle")


def test_readout_delay_from_the_header():
    """SPOC records the staggered-readout delay (TMOFST<camera><ccd>); the header wins."""
    from astropy.io import fits

    from tessphot.timefix import readout_delay

    header = fits.Header({"TMOFST14": 0.06})
    assert readout_delay(header, 1, 4) == 0.06
    assert readout_delay(fits.Header(), 4, 3) == pytest.approx(1.04)  # the table
    assert readout_delay(None, 2, 1) == 1.5
    delayed = stamp_error(1, None, 4, 3, "mid", readout=0.5)
    assert delayed == pytest.approx(1.979 - 0.5)
    assert stamp_error(1, None, 4, 3, "mid", datatype="tpf", readout=0.5) == pytest.approx(1.979)
