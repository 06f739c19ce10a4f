"""The effective PRF measured by prepare, stored with the prepared data and used by photometry.

On small simulated sectors with the real SPOC PRF: with the simulator's PRF differences
(width, ellipticity, focus, halos) and without them.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from tessphot.config.prepare import EffectivePRFSettings
from tessphot.config.simulate import PRFDifferenceSettings, SimulationConfig
from tessphot.evaluation.simulate.prf_differences import exact_prf
from tessphot.evaluation.simulate.prf_halo import HALO_PHASES, HaloProfile
from tessphot.evaluation.simulate.truth import read_truth
from tessphot.photometry.target import open_target
from tessphot.prepare.cube import PreparedCube
from tessphot.prepare.effective_prf import (
    GROUP,
    HALF_DIFFERENCES,
    frame_uncertainty,
    read_effective_prf,
    write_effective_prf,
)
from tessphot.prepare.run import prepare_ccd
from tessphot.prf import AnalyticPRF, PRFModel, load_prf
from tessphot.prf.effective import EffectivePRF, measure_effective_prf

#: Cadences of the bright region (its stars: tests/prepare/conftest.py).
CADENCES = 10


def _config(make, prf_dir, differences: bool) -> SimulationConfig:
    return make(prf_dir, PRFDifferenceSettings(enabled=differences), cadences=CADENCES, bright=2)


@pytest.fixture(scope="module")
def differing(tmp_path_factory, builder, region_config, prf_dir):
    """The sector simulated with the default PRF differences, prepared."""
    build, _ = builder
    folder = tmp_path_factory.mktemp("eprf_differing")
    return build(folder, _config(region_config, prf_dir, True), prf_dir=str(prf_dir))


@pytest.fixture(scope="module")
def same(tmp_path_factory, builder, region_config, prf_dir):
    """The sector simulated with the model itself, prepared with and without the effective
    PRF (``disabled``: the second file)."""
    build, _ = builder
    folder = tmp_path_factory.mktemp("eprf_same")
    prepared = build(folder, _config(region_config, prf_dir, False), prf_dir=str(prf_dir))
    (folder / "disabled").mkdir()
    disabled = prepare_ccd(
        folder,
        1,
        1,
        4,
        workers=1,
        prf_dir=str(prf_dir),
        progress=False,
        settings={"effective_prf": {"enabled": False}},
        output=folder / "disabled" / prepared.hdf5.name,
    )
    return prepared, disabled


def _region(config: SimulationConfig):
    (r0, c0), size = config.origin, config.size
    return (r0, r0 + size, c0, c0 + size)


def _tables_at_centre(prf, config: SimulationConfig) -> np.ndarray:
    r0, r1, c0, c1 = _region(config)
    return prf.tables_at([(r0 + r1) / 2], [(c0 + c1) / 2])[0]


def test_effective_prf_halves_the_residuals(differing, prf_dir):
    with PreparedCube(differing.hdf5) as cube:
        prf = cube.effective_prf()
        quality = cube.dataset_attrs(GROUP)
    assert isinstance(prf, EffectivePRF) and not prf.base_analytic
    assert prf.short_name.startswith("ePRF SPOC")
    assert quality["n_stars"] >= 10 and quality["n_check"] >= 3
    # The bright isolated stars' residuals, fitted and left out of the fit: at least halved.
    assert quality["rms_effective"] < 0.5 * quality["rms_model"]
    assert quality["rms_effective_check"] < 0.5 * quality["rms_model_check"]
    assert quality["chi2_effective_check"] < 0.25 * quality["chi2_model_check"]
    # Closer to the PRF the stars were rendered with (the truth's, at the mean focus).
    truth = read_truth(differing.truth)
    differences = truth["prf_differences"]
    base = load_prf(str(prf_dir), 1, 1, 4)
    config = differing.config
    focus = float(np.mean(differences["focus"]))
    exact = exact_prf(base, differences, _region(config), focus=focus)
    model_error = np.abs(_tables_at_centre(base, config) - _tables_at_centre(exact, config)).sum()
    error = np.abs(_tables_at_centre(prf, config) - _tables_at_centre(exact, config)).sum()
    assert error < 0.5 * model_error


def test_effective_prf_stored(differing):
    with h5py.File(differing.hdf5, "r") as h5:
        group = h5[GROUP]
        stars = group["stars"][()]
        assert group["tables"].shape[1:] == (117, 117)
        assert set(group.attrs) >= {"name", "short_name", "base_name", "settings", "seconds"}
        assert json.loads(group.attrs["settings"]) == EffectivePRFSettings().as_dict()
        assert stars["used"].sum() == group.attrs["n_stars"]
        assert stars["check"].sum() == group.attrs["n_check"]
        assert not np.any(stars["used"] & stars["check"])
        settings = json.loads(h5.attrs["settings"])
    assert settings["effective_prf"]["enabled"] is True
    # Unit flux at every node.
    with PreparedCube(differing.hdf5) as cube:
        np.testing.assert_allclose(cube.effective_prf().tables.sum(axis=(1, 2)), 81.0)


def test_no_differences_no_correction(differing, same):
    """Stars rendered with the model: the correction stays near zero, and is not used."""
    with PreparedCube(differing.hdf5) as cube:
        real = cube.effective_prf()
    with h5py.File(same[0].hdf5, "r") as h5:
        group = h5[GROUP]
        quality = dict(group.attrs)
        measured = PRFModel(
            group["tables"][()],
            group["node_rows"][()],
            group["node_cols"][()],
            "stored",
            "stored",
            taper=False,
        )
        base = load_prf(json.loads(h5.attrs["settings"])["prf"], 1, 1, 4)
    config = differing.config
    correction = _tables_at_centre(measured, config) - _tables_at_centre(base, config)
    real_correction = _tables_at_centre(real, config) - _tables_at_centre(base, config)
    # What 10 frames' noise leaves in it: 6 % of the default differences' correction ...
    assert np.abs(correction).sum() < 0.1 * np.abs(real_correction).sum()
    # ... which fits the stars left out of the fit no better than the model: not used.
    assert quality["chi2_model_check"] < 3
    assert not quality["accepted"]
    with PreparedCube(same[0].hdf5) as cube:
        assert cube.effective_prf() is None
    with PreparedCube(differing.hdf5) as cube:
        assert cube.dataset_attrs(GROUP)["accepted"]


def test_disabled(same):
    """Switched off: no group, no effective PRF; the file is otherwise complete."""
    _, disabled = same
    with PreparedCube(disabled) as cube:
        assert cube.effective_prf() is None
        assert cube.settings["effective_prf"]["enabled"] is False
        assert cube.dataset_attrs("motion")["source"] == "stars"


def test_photometry_uses_the_effective_prf(differing):
    star = _bright_star(differing.hdf5)
    target = open_target(star, differing.folder, 1, 1, 4)
    assert isinstance(target.prf, EffectivePRF) and target.prf_trusted
    model = open_target(star, differing.folder, 1, 1, 4, settings={"effective_prf": False})
    assert not isinstance(model.prf, EffectivePRF)
    assert model.prf.short_name.startswith("SPOC")


def _bright_star(path) -> int:
    """A catalogued star near the region's centre."""
    from tessphot.catalog.make import catalog_path
    from tessphot.catalog.sqlite_catalog import CatalogDB

    with CatalogDB(catalog_path(path.parent, 1, 1, 4)) as db:
        stars = db.stars(tmag_max=11.0)
    return int(stars["starid"][0])


def test_storage_round_trip(tmp_path):
    """Written and read back: the same tables, nodes and names (no data files needed)."""
    base = AnalyticPRF()
    rng = np.random.default_rng(2)
    rows = 100 + rng.uniform(0, 150, 60)
    cols = 200 + rng.uniform(0, 150, 60)
    flux = 10 ** rng.uniform(4, 4.7, 60)
    shape, origin = (170, 170), (90, 190)
    image = AnalyticPRF(fwhm=2.0).render(rows, cols, flux, shape, origin)
    sigma = np.sqrt(np.clip(image, 0, None) / 2e4 + 0.01)
    image += sigma * rng.standard_normal(shape)
    settings = EffectivePRFSettings(max_contamination=0.3)
    fit = measure_effective_prf(image, sigma, origin, (rows, cols, flux), base, settings)
    with h5py.File(tmp_path / "file.hdf5", "w") as h5:
        assert read_effective_prf(h5) is None
        write_effective_prf(h5, fit, settings)
    with h5py.File(tmp_path / "file.hdf5", "r") as h5:
        back = read_effective_prf(h5)
    np.testing.assert_allclose(back.tables, fit.prf.tables, rtol=1e-12, atol=1e-20)
    np.testing.assert_array_equal(back.node_rows, fit.prf.node_rows)
    assert (back.name, back.short_name, back.base_analytic) == (
        fit.prf.name,
        fit.prf.short_name,
        True,
    )
    stamps, *_ = back.stamps([150.3], [250.7])
    np.testing.assert_allclose(stamps, fit.prf.stamps([150.3], [250.7])[0], atol=1e-12)


def test_frame_uncertainty_decoded(tmp_path):
    """Uncertainties stored as floats, or as half floats' patterns in time differences."""
    rng = np.random.default_rng(4)
    errors = rng.uniform(0.5, 40.0, (7, 5, 6)).astype(np.float16)
    bits = errors.view(np.uint16)
    block = 4
    differences = bits.copy()
    for start in range(0, 7, block):
        stop = min(start + block, 7)
        differences[start + 1 : stop] = bits[start + 1 : stop] - bits[start : stop - 1]
    with h5py.File(tmp_path / "file.hdf5", "w") as h5:
        h5.create_dataset("images", data=np.zeros((7, 5, 6), np.int32)).attrs["block_frames"] = (
            block
        )
        h5.create_dataset("images_err", data=differences).attrs["encoding"] = HALF_DIFFERENCES
        h5.create_dataset("floats", data=errors.astype(np.float32))
        for frame in range(7):
            np.testing.assert_array_equal(frame_uncertainty(h5, frame), errors[frame])
        del h5["images_err"]
        h5["images_err"] = errors
        np.testing.assert_array_equal(frame_uncertainty(h5, 5), errors[5])


def test_halos_measured_on_the_simulated_stars(differing):
    """The stars the simulator gave a halo (2 % of their light) are measured with one.

    One or two such stars on the region hardly fix the halo's shape: what is compared is its light
    within a star's 13x13 px box, what the photometry's apertures see of it.
    """
    with PreparedCube(differing.hdf5) as cube:
        halos = cube.star_halos()
    truth = read_truth(differing.truth)
    index = {int(s): i for i, s in enumerate(truth["stars"]["starid"])}
    differences = truth["prf_differences"]
    share = np.asarray(differences["halo_fraction"])
    true = np.array([share[index[int(s)]] for s in halos.starid])
    assert (true > 0).sum() >= 1 and (true == 0).sum() >= 5
    kernel = HaloProfile(**differences["halo"]).kernels()[HALO_PHASES // 2, HALO_PHASES // 2]
    h = kernel.shape[0] // 2
    true_box = kernel[h - 6 : h + 7, h - 6 : h + 7].sum()
    box = halos.shape.image([0.0], [0.0], (-6, -6), (13, 13))[0].sum()
    difference = np.median(halos.fraction[true > 0]) - np.median(halos.fraction[true == 0])
    assert difference * box == pytest.approx(0.02 * true_box, rel=0.25)
    # The stars without one: typically under a fifth of it.
    assert np.median(np.abs(halos.fraction[true == 0])) * box < 0.2 * 0.02 * true_box
