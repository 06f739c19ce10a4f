"""Scoring with simulated systematics: the truth's expected raw flux and intrinsic signal,
raw residuals that fit the systematics' shapes, and corrected flux against the intrinsic."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from astropy.io import fits

from tessphot.config.simulate import SimulationConfig
from tessphot.constants import FIRST_SCIENCE_CCD_COLUMN, FIRST_SCIENCE_CCD_ROW
from tessphot.evaluation.scoring.corrected import score_corrected_flux
from tessphot.evaluation.scoring.sector_lightcurve import residual
from tessphot.evaluation.scoring.sector_truth import read_truth
from tessphot.evaluation.scoring.systematics import aperture_pixels
from tessphot.evaluation.simulate import detector
from tessphot.evaluation.simulate.sector import simulate_sector
from tessphot.evaluation.simulate.variability import CONSTANT
from tessphot.lightcurve.format import ApertureBits

#: Relative precision of the float32 images.
FLOAT32 = 2 * np.finfo(np.float32).eps


def _noiseless(rng, rate, exposure, read_noise_cols):
    """The detector without noise: the image is the true rate."""
    return rate.astype(np.float32), np.ones(rate.shape, dtype=np.float32)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """A noiseless 40x40 px, 60-cadence simulation with systematics, its truth of every star."""
    folder = tmp_path_factory.mktemp("scored_systematics")
    config = SimulationConfig(
        size=40,
        cadences=60,
        stars=40,
        bright=0,
        seed=12,
        compress=False,
        variable_fraction=0.5,
        scatter_ramp=30.0,
        systematics=True,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(detector, "expose", _noiseless)
        result = simulate_sector(config, folder, progress=False)
    images = np.array([fits.getdata(p, 1) for p in result["ffis"]], dtype=float)
    with h5py.File(result["truth"]) as h5:
        starids = h5["stars"]["starid"][:]
        background = h5["background"][:]
    truth = read_truth(result["truth"], starids)
    return truth, images, background, config.region()


def test_truth_keeps_the_systematics_and_the_intrinsic_signal(simulated):
    truth, *_ = simulated
    assert truth.systematics is not None
    constant = np.flatnonzero(truth.signals["kind"] == CONSTANT)
    assert constant.size > 5
    for i in constant:
        raw = truth.flux[:, i] / truth.flux[:, i].mean() - 1
        assert np.std(raw) > 1e-4  # the rendered flux holds the systematics ...
        assert np.max(np.abs(truth.intrinsic_signal(i))) < 1e-12  # ... the intrinsic not
        m = truth.multiplicative(i)
        np.testing.assert_allclose(1 + raw, (1 + m) / np.mean(1 + m), rtol=1e-12)


def test_expected_raw_flux_of_an_aperture_is_the_image(simulated):
    """Image - sky - the other stars, summed over an aperture = the target's expected raw flux
    (its light through the PRF, systematics included, plus the additive light)."""
    truth, images, background, (r0, r1, c0, c1) = simulated
    inside = (
        (truth.row > r0 + 6) & (truth.row < r1 - 6) & (truth.col > c0 + 6) & (truth.col < c1 - 6)
    )
    i = int(np.flatnonzero(inside)[np.argmax(truth.flux[0, inside])])
    centre = int(round(truth.row[i])), int(round(truth.col[i]))
    rows, cols = (v.ravel() for v in np.mgrid[-2:3, -2:3])
    rows, cols = rows + centre[0], cols + centre[1]
    expected = truth.expected_flux(i, rows, cols)
    others = np.arange(truth.starid.size) != i
    shape = (r1 - r0, c1 - c0)
    assert np.std(expected.additive) > 0 and np.std(expected.multiplicative) > 0
    for k in range(truth.tmid.size):
        light = truth.prf.render(
            truth.row[others] + truth.drow[k, others],
            truth.col[others] + truth.dcol[k, others],
            truth.flux[k, others],
            shape,
            (r0, c0),
            node_rows=truth.row[others],
            node_cols=truth.col[others],
        )
        rest = images[k] - background[k] - light
        measured = rest[rows - r0, cols - c0].sum()
        scale = np.abs(images[k][rows - r0, cols - c0]).sum()
        assert measured == pytest.approx(expected.raw[k], abs=4 * FLOAT32 * scale)
    np.testing.assert_allclose(expected.raw - expected.target, expected.additive)


def test_raw_residual_fits_the_shapes_of_the_systematics(simulated):
    """A raw flux with neighbours' light times m and additive light: the residual is the
    noise with the systematics' shapes fitted, far above it without."""
    truth, *_ = simulated
    i = int(np.flatnonzero(truth.signals["kind"] != CONSTANT)[0])
    cadences = np.arange(truth.tmid.size)
    m = truth.multiplicative(i)
    neighbours = truth.flux[:, i].mean() * (1 + m)
    additive = 0.05 * truth.flux[:, i].mean() * truth.systematics.additive_profile
    noise = np.random.default_rng(1).normal(0, 1e-4, cadences.size) * truth.flux[:, i].mean()
    flux = truth.flux[:, i] + neighbours + additive + noise
    shapes = truth.systematics.raw_columns(i, cadences)
    fitted, target = residual(flux, truth.flux[:, i], 0.5, systematics=shapes)
    plain, _ = residual(flux, truth.flux[:, i], 0.5)
    assert np.std(fitted) == pytest.approx(np.std(noise) / target, rel=0.1)
    assert np.std(plain) > 3 * np.std(fitted)


def test_corrected_flux_scored_against_the_intrinsic_signal(simulated):
    truth, *_ = simulated
    i = int(np.argmax([np.std(truth.intrinsic_signal(j)) for j in range(truth.starid.size)]))
    assert np.std(truth.intrinsic_signal(i)) > 1e-3
    cadences = np.arange(truth.tmid.size)
    intrinsic = truth.intrinsic_signal(i)
    noise = np.random.default_rng(2).normal(0, 50e-6, cadences.size)
    perfect = score_corrected_flux(truth, i, cadences, 1e6 * (intrinsic + noise))
    assert perfect.signal_kept == pytest.approx(1.0, abs=0.05)
    assert abs(perfect.multiplicative_left) < 0.1
    assert perfect.rms_cadence_ppm == pytest.approx(50, rel=0.4)
    # The raw relative flux still holds the multiplicative systematics, once.
    raw = truth.flux[:, i] / truth.flux[:, i].mean() - 1
    untouched = score_corrected_flux(truth, i, cadences, 1e6 * (raw + noise))
    assert untouched.multiplicative_left == pytest.approx(1.0, abs=0.1)
    assert untouched.rms_cadence_ppm > perfect.rms_cadence_ppm
    # A corrector that halves the signal.
    halved = score_corrected_flux(truth, i, cadences, 1e6 * (0.5 * intrinsic + noise))
    assert halved.signal_kept == pytest.approx(0.5, abs=0.05)
    # Too few finite values: nothing measured.
    empty = score_corrected_flux(truth, i, cadences[:3], np.zeros(3))
    assert np.isnan(empty.rms_hour_ppm)


def test_aperture_pixels_of_a_light_curve(tmp_path):
    bits = np.zeros((4, 5), dtype=np.int32)
    bits[1, 2] = bits[2, 3] = ApertureBits.PHOTOMETRIC | ApertureBits.COLLECTED
    bits[0, 0] = ApertureBits.COLLECTED
    header = fits.Header(
        [("CRVAL1P", 100 + FIRST_SCIENCE_CCD_COLUMN), ("CRVAL2P", 50 + FIRST_SCIENCE_CCD_ROW)]
    )
    path = tmp_path / "lc.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(bits, header=header, name="APERTURE")]).writeto(
        path
    )
    rows, cols = aperture_pixels(path)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(51, 102), (52, 103)]
