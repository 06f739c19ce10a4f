"""Header cards computed through caches or in one go are those of the card-by-card path."""

from __future__ import annotations

import numpy as np
from astropy.io import fits
from astropy.time import Time

from tessphot.lightcurve.format import ObservationInfo
from tessphot.lightcurve.header import (
    CARD_LENGTH,
    _fitting_comment,
    _lightcurve_cards,
    _value_end,
)

LONG_COMMENT = "a comment that cannot fit beside a long value on one card of eighty"


def test_fitting_comment_cached_is_the_measured_one():
    """A long value's comment is cut to what astropy's card leaves, cached or not."""
    _value_end.cache_clear()
    for key, value in (
        ("AP_PRF", "analytic FWHM 1.9 px + 8% wings"),
        ("BARYSRC", "geocentre (simulated data)"),
        ("AP_NUM", 1),
        ("AP_NUM", 1.0),
        ("AP_NUM", True),
    ):
        room = CARD_LENGTH - len(fits.Card(key, value).image.rstrip()) - len(" / ")
        for _ in range(2):  # the second from the cache
            comment = _fitting_comment(key, value, LONG_COMMENT)
            assert comment == LONG_COMMENT[:room]
            assert len(fits.Card(key, value, comment).image) == CARD_LENGTH
    assert _value_end.cache_info().hits >= 5


def test_dates_of_both_ends_converted_together():
    """DATE-OBS and DATE-END are each end's own conversion to UTC."""
    obs = ObservationInfo(sector=1, camera=1, ccd=4, cadence=1800.0, data_rel=1)
    rng = np.random.default_rng(3)
    for start in 1325.0 + 27 * rng.random(20):
        time = start + np.sort(rng.random(50)) * 27
        cards = {key: value for key, value, _ in _lightcurve_cards({"TIME": time}, obs)}
        for key, end in (("DATE-OBS", "TSTART"), ("DATE-END", "TSTOP")):
            expected = Time(2457000, cards[end], format="jd", scale="tdb").utc.isot
            assert cards[key] == expected and type(cards[key]) is str
