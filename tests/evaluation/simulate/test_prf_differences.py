"""Simulated PRF differences: flux kept, moments changed as asked, focus per orbit, halo,
off by default, and the truth reproduces what was rendered."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from astropy.io import fits
from scipy import ndimage

from tessphot.config import SettingsError, load_settings
from tessphot.config.simulate import PRFDifferenceSettings, SimulationConfig
from tessphot.constants import SCIENCE_SIZE, tmag_to_flux
from tessphot.evaluation.simulate.cadences import make_cadences
from tessphot.evaluation.simulate.pointing import move_positions
from tessphot.evaluation.simulate.prf_differences import TransformedPRF, exact_prf
from tessphot.evaluation.simulate.prf_field import PRFField, focus_curve, shape_matrices
from tessphot.evaluation.simulate.prf_halo import HaloProfile, render_halos
from tessphot.evaluation.simulate.sector import simulate_sector
from tessphot.evaluation.simulate.truth import read_truth
from tessphot.geometry import sector_geometry
from tessphot.prf import OVERSAMPLE, AnalyticPRF, SpocPRF, load_prf
from tessphot.prf.effective_shape import SPLINE_ORDER, transformed_table

#: Relative precision of the float32 images.
FLOAT32 = 2 * np.finfo(np.float32).eps
#: The default amounts at their largest over the CCD (the field's spread, 1.5 times the
#: mean) with the focus change at an orbit's start: (width factor, ellipticity, angle).
LARGEST = (
    (1 + 1.5 * PRFDifferenceSettings().width_change) * (1 + PRFDifferenceSettings().focus_change),
    1.5 * PRFDifferenceSettings().ellipticity,
    30.0,
)
#: Bright star of the noiseless pair, with a halo (science-area row, column near the centre).
BRIGHT = (950_000_001, 8.0, 1021.3, 1026.6)


@pytest.fixture(params=["analytic", "spoc"])
def base(request):
    """The analytic PRF and the real SPOC one (skipped without the test data)."""
    if request.param == "analytic":
        return AnalyticPRF()
    return SpocPRF(request.getfixturevalue("prf_dir"), 1, 1, 4)


def _moments(image: np.ndarray, row: float, col: float, row0: int, col0: int) -> np.ndarray:
    """Second moments (row, column) of an image about a star at (row, col)."""
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    dy, dx = yy + row0 - row, xx + col0 - col
    w = image / image.sum()
    return np.array(
        [[(w * dy * dy).sum(), (w * dy * dx).sum()], [(w * dx * dy).sum(), (w * dx * dx).sum()]]
    )


def _phase_averaged_moments(prf, node: tuple[float, float]) -> np.ndarray:
    """Moments of rendered stars (about the star) averaged over the sub-pixel phases of the
    tables' samples: together their pixels sample every offset of the tables once."""
    phases = np.arange(-(OVERSAMPLE // 2), OVERSAMPLE // 2 + 1) / OVERSAMPLE
    total = np.zeros((2, 2))
    for fy in phases:
        for fx in phases:
            row, col = 1024 + fy, 1024 + fx
            image = prf.render([row], [col], [1.0], (15, 15), (1017, 1017), [node[0]], [node[1]])
            total += _moments(image, row, col, 1017, 1017)
    return total / phases.size**2


def test_transform_keeps_the_flux(base):
    """The transform keeps a table's flux within 1e-4 at the largest default amounts (the
    rest leaves the 13x13 px footprint; the model then renormalises), and a rendered star
    holds its whole flux, halo included."""
    worst = 0.0
    for table in base.tables:
        coefficients = ndimage.spline_filter(table, order=SPLINE_ORDER, mode="grid-constant")
        for width, ellipticity, angle in (LARGEST, (0.97, 0.045, -60.0), (1.0, 0.0, 0.0)):
            raw = transformed_table(coefficients, shape_matrices(width, ellipticity, angle)[0])
            worst = max(worst, abs(raw.sum() / OVERSAMPLE**2 - 1))
    assert worst < 1e-4
    prf_field = PRFField(*LARGEST)
    model = TransformedPRF(base, prf_field, (900.0, 1100.0, 900.0, 1100.0)).model(1.0)
    image = model.render([1000.3], [1001.8], [123.0], (41, 41), (980, 980))
    assert image.sum() == pytest.approx(123.0, rel=1e-12)
    halo = HaloProfile(40.0, 2.5)
    image = render_halos(
        halo, halo.kernels(), [1000.3], [1001.8], [123.0], (101, 101), origin=(950, 950)
    )
    assert image.sum() == pytest.approx(123.0, rel=1e-12)


@pytest.mark.parametrize(
    ("width", "ellipticity", "angle"), [(1.03, 0.0, 0.0), (0.97, 0.03, 30.0), (1.0, 0.03, -75.0)]
)
def test_width_and_ellipticity_change_the_second_moments(base, width, ellipticity, angle):
    """Rendered stars' second moments become A M A^T: their widths along and across the
    stretch change by width (1 +- ellipticity), within 1 % of the change asked for."""
    node = (1024.0, 1024.0)
    before = _phase_averaged_moments(base, node)
    model = TransformedPRF(base, PRFField(width - 1, ellipticity, angle), (1000, 1050, 1000, 1050))
    after = _phase_averaged_moments(model.model(1.0), node)
    matrix = shape_matrices(width, ellipticity, angle)[0]
    np.testing.assert_allclose(after, matrix @ before @ matrix.T, atol=0.01 * 0.03 * before.max())
    # Along the stretch (angle from the column axis towards the row axis) and across it.
    along = np.array([np.sin(np.radians(angle)), np.cos(np.radians(angle))])
    across = np.array([along[1], -along[0]])
    for direction, factor in ((along, 1 + ellipticity), (across, 1 - ellipticity)):
        ratio = np.sqrt((direction @ after @ direction) / (direction @ before @ direction))
        if abs(before[0, 1]) < 1e-3 * before[0, 0]:  # round PRF: exactly the factor asked for
            assert ratio == pytest.approx(width * factor, abs=0.01 * 0.03)
    assert np.sqrt(np.linalg.det(after) / np.linalg.det(before)) == pytest.approx(
        abs(np.linalg.det(matrix)), abs=3e-4
    )


def test_field_over_the_ccd_and_nodes(prf_dir):
    """The drawn field varies by half the mean amounts over the CCD; the rendered tables
    (bilinear between nodes) follow each star's own transform within 3e-4 in width; a crop
    renders the same PRF as the whole CCD."""
    settings = PRFDifferenceSettings(enabled=True)
    prf_field = PRFField.draw(settings, seed=5)
    grid = np.linspace(0, SCIENCE_SIZE - 1, 65)
    rows, cols = (a.ravel() for a in np.meshgrid(grid, grid, indexing="ij"))
    width, ellipticity, angle = prf_field.evaluate(rows, cols)
    w, e = settings.width_change, settings.ellipticity
    assert 1 + 0.5 * w - 1e-12 <= width.min() and width.max() <= 1 + 1.5 * w + 1e-12
    assert min(abs(width.max() - 1 - 1.5 * w), abs(width.min() - 1 - 0.5 * w)) < 1e-12
    assert 0.5 * e - 1e-12 <= ellipticity.min() and ellipticity.max() <= 1.5 * e + 1e-12
    assert np.all(np.abs(angle - settings.angle) <= 45.0 + 1e-9)
    assert np.mean(width) == pytest.approx(1 + w, abs=0.1 * w)
    # Same seed, same field; another seed, another.
    assert PRFField.draw(settings, seed=5) == prf_field != PRFField.draw(settings, seed=6)

    spoc = SpocPRF(prf_dir, 1, 1, 4)
    whole = TransformedPRF(spoc, prf_field, (-10, SCIENCE_SIZE + 10, -10, SCIENCE_SIZE + 10))
    assert whole.node_rows.size == 9 and np.diff(whole.node_rows).max() <= 256
    crop = TransformedPRF(spoc, prf_field, (590, 738, 1290, 1438))
    assert crop.node_rows.size < whole.node_rows.size
    rng = np.random.default_rng(3)
    rows, cols = rng.uniform(590, 738, 20), rng.uniform(1290, 1438, 20)
    np.testing.assert_array_equal(
        whole.model(1.01).tables_at(rows, cols), crop.model(1.01).tables_at(rows, cols)
    )
    own = [
        transformed_table(ndimage.spline_filter(t, order=SPLINE_ORDER, mode="grid-constant"), m)
        for t, m in zip(spoc.tables_at(rows, cols), prf_field.matrices(rows, cols), strict=True)
    ]
    rendered = crop.model(1.0).tables_at(rows, cols)
    d = (np.arange(rendered.shape[1]) - rendered.shape[1] // 2) / OVERSAMPLE
    r2 = d[:, None] ** 2 + d[None, :] ** 2
    for a, b in zip(own, rendered, strict=True):
        assert np.sqrt((a * r2).sum() / a.sum() / ((b * r2).sum() / b.sum())) == pytest.approx(
            1, abs=3e-4
        )


def test_focus_is_continuous_within_an_orbit_and_restarts_at_the_gap():
    config = SimulationConfig(sector=1, camera=1, ccd=4)
    cadences = make_cadences(config, sector_geometry(1, 1, 4), np.random.default_rng(0))
    tmid = 0.5 * (cadences.tstart + cadences.tstop)
    change, time = 0.02, 1.0
    focus = focus_curve(tmid, cadences.orbits, change=change, time=time)
    step = np.diff(focus)
    gap = int(np.argmax(np.diff(tmid)))
    cadence = np.median(np.diff(tmid))
    # Within each orbit: settling smoothly (each step at most F dt / tau), never up.
    within = np.delete(step, gap)
    assert np.all(within <= 0) and np.all(-within <= change * cadence / time + 1e-12)
    # At the gap it starts again from 1 + F.
    assert step[gap] > 0.9 * change * (1 - np.exp(-(tmid[gap] - tmid[0]) / time))
    for first in (0, gap + 1):
        assert focus[first] == pytest.approx(1 + change * np.exp(-cadence / 2 / time), rel=1e-3)
    assert focus[gap] - 1 < 1e-5 and focus[-1] - 1 < 1e-5
    # A negative change makes the PRF narrower after each orbit's start.
    assert np.all(focus_curve(tmid, cadences.orbits, change=-change, time=time) <= 1)


def test_halo_profile():
    """The halo's kernels hold unit flux, nothing beyond the radius, centred on the star."""
    halo = HaloProfile(12.0, 2.5)
    kernels = halo.kernels()
    assert kernels.shape == (10, 10, 25, 25)
    np.testing.assert_allclose(kernels.sum(axis=(2, 3)), 1.0, rtol=1e-12)
    k = np.arange(-12, 13)
    far = np.hypot(k[:, None], k[None, :]) > 12 + np.sqrt(0.5)  # the star within 1/2 px
    assert np.all(kernels[:, :, far] == 0)
    row, col = 100.31, 200.87
    image = render_halos(halo, kernels, [row], [col], [1.0], (60, 60), origin=(70, 170))
    moments = _moments(image, row, col, 70, 170)
    assert abs(moments[0, 1]) < 1e-3 * moments[0, 0]
    assert moments[0, 0] == pytest.approx(moments[1, 1], rel=1e-3)
    yy, xx = np.mgrid[:60, :60]
    assert (image * (yy + 70)).sum() == pytest.approx(row, abs=1 / 18)
    assert (image * (xx + 170)).sum() == pytest.approx(col, abs=1 / 18)
    # Off the region its light is lost: a star on the edge keeps about half.
    edge = render_halos(halo, kernels, [70.0], [200.0], [1.0], (60, 60), origin=(70, 170))
    assert 0.4 < edge.sum() < 0.65


SMALL = dict(size=64, cadences=6, stars=60, bright=0, seed=21, compress=False)


@pytest.fixture(scope="module", params=["analytic", "spoc"])
def pair(request, tmp_path_factory, noiseless_runs):
    """The same noiseless simulation without and with PRF differences (analytic and SPOC)."""
    prf_dir = None
    if request.param == "spoc":
        prf_dir = str(request.getfixturevalue("prf_dir"))
    configs = {
        name: SimulationConfig(**SMALL, prf_dir=prf_dir, extra_stars=[BRIGHT], prf={"enabled": on})
        for name, on in (("off", False), ("on", True))
    }
    return {"prf_dir": prf_dir, **noiseless_runs(tmp_path_factory, f"prf_{request.param}", configs)}


def test_off_by_default_and_off_means_untouched(tmp_path):
    """Off, the other keys change nothing; on with every amount zero, the images are those
    without (the model itself, no halo)."""
    assert SimulationConfig().prf.enabled is False
    small = dict(size=24, cadences=3, stars=10, bright=0, seed=4, compress=False)
    tuned = dict(width_change=0.1, ellipticity=0.1, focus_change=0.1, halo_fraction=0.1)
    zero = dict(width_change=0, ellipticity=0, focus_change=0, halo_fraction=0)
    plain = simulate_sector(SimulationConfig(**small), tmp_path / "a", progress=False)
    runs = {
        "tuned": SimulationConfig(**small, prf={**tuned, "halo_tmag": 20.0}),
        "zero": SimulationConfig(**small, prf={**zero, "enabled": True}),
    }
    for name, config in runs.items():
        result = simulate_sector(config, tmp_path / name, progress=False)
        for pa, pb in zip(plain["ffis"], result["ffis"], strict=True):
            np.testing.assert_array_equal(fits.getdata(pa, 1), fits.getdata(pb, 1))
        a, b = read_truth(plain["truth"]), read_truth(result["truth"])
        for key in ("flux", "row", "col", "background", "jitter", "stars", "signals"):
            np.testing.assert_array_equal(a[key], b[key])
        with h5py.File(result["truth"]) as h5:
            assert ("prf_differences" in h5) is (name == "zero")
        assert ("SIMPRFD" in fits.getheader(result["ffis"][0], 1)) is (name == "zero")


def test_settings_are_checked_and_read_from_a_file(tmp_path):
    with pytest.raises(SettingsError, match=r"\[simulate.prf\] width_change"):
        SimulationConfig.from_mapping({"prf": {"width_change": 0.5}})
    with pytest.raises(SettingsError, match="halo_radius"):
        PRFDifferenceSettings(halo_radius=1.0)
    path = tmp_path / "settings.toml"
    path.write_text("[simulate.prf]\nenabled = true\nhalo_fraction = 0.01\n")
    simulate = load_settings(path)["simulate"]
    assert simulate["prf"]["enabled"] is True and simulate["prf"]["halo_fraction"] == 0.01
    assert SimulationConfig(**simulate).prf == PRFDifferenceSettings(
        enabled=True, halo_fraction=0.01
    )
    path.write_text("[simulate.prf]\nhalo = 0.01\n")
    with pytest.raises(SettingsError, match="halo"):
        load_settings(path)


def test_truth_reproduces_the_images(pair):
    """On minus off (same seed, no noise): everything but the stars' PRF is the same, and the
    truth's differences render the images 'on' to float32 precision: the exact PRF of each
    cadence's focus (:func:`exact_prf`) holding 1 - halo_fraction of each star's total flux,
    the halo the rest (off the region it is lost, as the PRF's own light)."""
    off, on = pair["off"]["truth"], pair["on"]["truth"]
    for key in ("flux", "row", "col", "background", "jitter", "stars", "signals", "tstart"):
        np.testing.assert_array_equal(off[key], on[key])
    diff = on["prf_differences"]
    assert off["prf_differences"] is None and diff is not None
    settings = PRFDifferenceSettings(**diff["settings"])
    assert settings == PRFDifferenceSettings(enabled=True)
    stars = on["stars"]
    # Per star: the field at its reference position; the halo for the bright ones.
    prf_field = PRFField(**diff["field"])
    width, ellipticity, angle = prf_field.evaluate(stars["row"], stars["col"])
    np.testing.assert_array_equal(diff["width"], width)
    np.testing.assert_array_equal(diff["ellipticity"], ellipticity)
    np.testing.assert_array_equal(diff["angle"], angle)
    np.testing.assert_array_equal(diff["matrix"], shape_matrices(width, ellipticity, angle))
    bright = stars["tmag"] < settings.halo_tmag
    assert bright.sum() >= 1 and stars["starid"][bright].tolist().count(BRIGHT[0]) == 1
    np.testing.assert_array_equal(diff["halo_fraction"], np.where(bright, 0.02, 0.0))
    # Per cadence: the focus curve.
    tmid = 0.5 * (on["tstart"] + on["tstop"])
    start = sector_geometry(1, 1, 4).tjd_start
    np.testing.assert_allclose(diff["focus"], 1 + 0.02 * np.exp(-(tmid - start) / 1.0))
    base = load_prf(pair["prf_dir"], 1, 1, 4)
    r0, r1, c0, c1 = on["attrs"]["region"]
    shape, origin = (r1 - r0, c1 - c0), (r0, c0)
    halo = HaloProfile(**diff["halo"])
    centre = tuple(h5py.File(pair["on"]["path"])["jitter"].attrs["centre"])
    for k in range(on["flux"].shape[0]):
        rows, cols = move_positions(stars["row"], stars["col"], *on["jitter"][k], centre)
        flux = on["flux"][k]
        model = exact_prf(base, diff, (r0 - 10, r1 + 10, c0 - 10, c1 + 10), focus=diff["focus"][k])
        predicted = model.render(
            rows,
            cols,
            flux * (1 - diff["halo_fraction"]),
            shape,
            origin,
            stars["row"],
            stars["col"],
        )
        halo_image = render_halos(
            halo,
            halo.kernels(),
            rows[bright],
            cols[bright],
            (flux * 0.02)[bright],
            shape,
            origin=origin,
        )
        predicted += halo_image + on["background"][k]
        image = pair["on"]["images"][k]
        assert np.all(np.abs(image - predicted) <= FLOAT32 * np.abs(predicted) + 1e-9)
        # ... and the differences show: pixels changed by more than 1 % of the peak.
        change = np.abs(image - pair["off"]["images"][k])
        assert change.max() > 0.01 * (pair["off"]["images"][k] - on["background"][k]).max()
    # The bright star's halo (part of the images matched above) reaches 25-30 px.
    i = int(np.flatnonzero(stars["starid"] == BRIGHT[0])[0])
    yy, xx = np.mgrid[r0:r1, c0:c1]
    ring = (np.hypot(yy - stars["row"][i], xx - stars["col"][i]) - 27.5) ** 2 < 2.5**2
    assert np.all(halo_image[ring] > 0.05)
    header = pair["on"]["header"]
    assert header["SIMPRFD"] is True and header["SIMPWID"] == 0.03 and header["SIMPHRAD"] == 40.0
    flux = tmag_to_flux(BRIGHT[1])
    assert on["flux"][:, i] == pytest.approx(flux, rel=0.1)  # the truth's flux is the total
