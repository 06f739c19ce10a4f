"""The prepare stage: accuracy against the truth, the HDF5 layout, robustness."""

from __future__ import annotations

import json
import logging
import shutil

import h5py
import hdf5plugin  # noqa: F401
import numpy as np
import pytest

from tessphot.cli import main
from tessphot.config.simulate import SimulationConfig
from tessphot.evaluation.scoring.prepare import score_prepared
from tessphot.prepare import blocks as prepare_blocks
from tessphot.prepare.cube import PreparedCube
from tessphot.prepare.flags import (
    BAD_QUALITY_BITS,
    EXCLUDED_FRAME_QUALITY,
    PixelFlags,
    manual_exclude,
)
from tessphot.prepare.frames import FrameSetError, collect_frames
from tessphot.prepare.layout import PAGE_BYTES
from tessphot.prepare.run import prepare_ccd


def test_background_and_jitter_against_truth(crowded, prf_dir):
    """Background error in star-free pixels at most 20 % of the per-pixel noise, small bias
    next to bright stars, jitter within 0.02 px rms of the truth."""
    score = score_prepared(crowded.hdf5, crowded.truth, str(prf_dir))
    print("\n" + "\n".join(score.lines()))
    assert score.n_star_free > 100
    assert score.background_rms_fraction <= 0.20
    assert abs(score.background_bias) < 0.05 * score.pixel_noise
    assert score.near_bright, "the field has bright stars"
    for _, bias in score.near_bright:
        assert abs(bias) < 0.5 * score.pixel_noise
    assert score.jitter_truth_rms > 0.02  # there is motion to recover
    assert score.jitter_error_rms <= 0.02


def test_layout(crowded):
    with h5py.File(crowded.hdf5, "r") as h5:
        n = len(crowded.ffis)
        assert h5.attrs["format_version"] == 3 and h5.attrs["complete"]
        # Space in pages (the writer buffers pages, not its ~3000 chunks per full frame).
        create = h5.id.get_create_plist()
        assert create.get_file_space_strategy()[0] == h5py.h5f.FSPACE_STRATEGY_PAGE
        assert create.get_file_space_page_size() == PAGE_BYTES
        assert tuple(h5.attrs["origin"]) == (300, 1500) and tuple(h5.attrs["shape"]) == (128, 128)
        assert h5.attrs["cadence"] == 1800 and h5.attrs["sector"] == 1
        settings = json.loads(h5.attrs["settings"])
        assert settings["background"]["box_size"] == 32 and settings["smoothing_frames"] == 7
        for name, dtype in (("images", "i4"), ("images_err", "u2"), ("pixel_flags", "u1")):
            ds = h5[name]
            assert ds.shape == (n, 128, 128) and ds.dtype == dtype
            assert ds.chunks == (32, 16, 16)
            assert "32001" in ds._filters  # Blosc (hdf5plugin)
        assert h5["images"].attrs["encoding"] == "quantised-differences"
        assert h5["images_err"].attrs["encoding"] == "half-differences"
        assert "backgrounds" not in h5  # evaluated from its mesh when read
        assert h5["background_mesh"].shape[0] == n
        for name in (
            "time",
            "timecorr",
            "time_start",
            "time_stop",
            "cadenceno",
            "quality",
            "imagespaths",
            "wcs",
        ):
            assert h5[name].shape == (n,)
        assert np.all(np.diff(h5["time"][:]) > 0)
        assert h5["cadenceno"][0] == 4697
        assert h5["motion"].shape == (n, 6) and np.isfinite(h5["motion"][:]).all()
    with PreparedCube(crowded.hdf5) as cube:
        images = cube.read("images")
        flags = cube.read("pixel_flags")
        quality = cube.array("quality")
        good = (quality & BAD_QUALITY_BITS) == 0
        np.testing.assert_allclose(
            cube.array("sumimage"), np.nanmean(images[good], axis=0), rtol=1e-5, atol=1e-4
        )
        # Pixels of catalogued stars and the saturated bleed columns were not used.
        assert 0.05 < np.mean(flags & PixelFlags.NotUsedForBackground) < 0.95
        # The images are background-subtracted: the fainter half of the pixels used for the
        # background (the others hold the wings of catalogued stars, whose predicted light
        # the estimate subtracted) is near zero.
        used = (flags[0] & PixelFlags.NotUsedForBackground) == 0
        sumimage = cube.array("sumimage")
        sky = used & (sumimage < np.nanmedian(sumimage[used]))
        assert abs(np.nanmedian(images[0][sky])) < 0.2
        assert cube.read("images_err")[0].min() > 0


def test_stamp_reader(crowded):
    with PreparedCube(crowded.hdf5) as cube:
        stamp = cube.stamp("images", 350, 365, 1550, 1565)
        assert stamp.shape == (len(crowded.ffis), 15, 15)
        np.testing.assert_array_equal(stamp, cube.read("images")[:, 50:65, 50:65])
        for name in ("images_err", "backgrounds", "pixel_flags"):
            whole = cube.read(name)
            part = cube.block(name, 3, 40, (350, 365, 1550, 1565))
            np.testing.assert_array_equal(part, whole[3:40, 50:65, 50:65])
        # Cadences from the middle of a block of differences decode the same.
        np.testing.assert_array_equal(
            cube.block("images", 35, 40, (350, 365, 1550, 1565)), stamp[35:40]
        )
        assert cube.array("sumimage").shape == (128, 128)
        with pytest.raises(ValueError, match="not on the region"):
            cube.stamp("images", 290, 305, 1550, 1565)
    with pytest.raises(OSError, match=r"missing\.hdf5: prepared data not found"):
        PreparedCube(crowded.hdf5.with_name("missing.hdf5"))


def test_already_done_is_skipped(crowded, caplog):
    mtime = crowded.hdf5.stat().st_mtime
    with caplog.at_level(logging.INFO, logger="tessphot"):
        prepare_ccd(crowded.folder, 1, 1, 4, workers=1, progress=False)
    assert "Already done" in caplog.text
    assert crowded.hdf5.stat().st_mtime == mtime


def test_resumes_after_a_crash(tmp_path, builder, monkeypatch, caplog):
    """A run killed after its first block leaves a .part file; the rerun resumes from there and
    gives the same result as an uninterrupted run."""
    build, simulate_and_catalog = builder
    config = SimulationConfig(size=48, cadences=70, stars=60, bright=0, seed=4)
    simulate_and_catalog(tmp_path, config)
    real_write = prepare_blocks.BlockWriter.flush
    calls = {"n": 0}

    def crash_after_first(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real_write(*args, **kw)

    monkeypatch.setattr(prepare_blocks.BlockWriter, "flush", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        prepare_ccd(tmp_path, 1, 1, 4, workers=1, progress=False)
    final = tmp_path / "sector001_camera1_ccd4.hdf5"
    part = final.with_name(final.name + ".part")
    assert part.exists() and not final.exists()
    with h5py.File(part, "r") as h5:
        assert h5.attrs["frames_done"] == 32 and not h5.attrs["complete"]
    with pytest.raises(OSError, match="not a complete"):
        PreparedCube(part)
    monkeypatch.setattr(prepare_blocks.BlockWriter, "flush", real_write)
    with caplog.at_level(logging.INFO, logger="tessphot"):
        prepare_ccd(tmp_path, 1, 1, 4, workers=1, progress=False)
    assert "Resuming" in caplog.text
    assert final.exists() and not part.exists()
    clean = prepare_ccd(
        tmp_path, 1, 1, 4, workers=1, progress=False, overwrite=True, output=tmp_path / "clean.hdf5"
    )
    with PreparedCube(final) as resumed, PreparedCube(clean) as cube:
        for name in ("images", "backgrounds", "images_err"):
            np.testing.assert_array_equal(resumed.read(name), cube.read(name))
        for name in ("sumimage", "motion"):
            np.testing.assert_allclose(
                resumed.array(name), cube.array(name), rtol=1e-6, atol=1e-7, equal_nan=True
            )


def test_corrupt_frame_is_flagged_not_fatal(tmp_path, builder, caplog):
    build, simulate_and_catalog = builder
    config = SimulationConfig(size=40, cadences=12, stars=40, bright=0, seed=8, compress=False)
    result = simulate_and_catalog(tmp_path, config)
    bad = result["ffis"][5]
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) - 3000])  # pixel data cut short; header intact
    with caplog.at_level(logging.ERROR, logger="tessphot"):
        out = prepare_ccd(tmp_path, 1, 1, 4, workers=1, progress=False)
    assert bad.name in caplog.text
    with PreparedCube(out) as cube:
        images = cube.read("images")
        assert cube.array("quality")[5] & EXCLUDED_FRAME_QUALITY
        assert np.isnan(images[5]).all() and np.isnan(cube.read("backgrounds")[5]).all()
        assert np.isfinite(images[4]).all() and np.isfinite(images[6]).all()
        assert np.all(cube.read("pixel_flags")[5] & PixelFlags.ManualExclude)


def test_duplicates_and_mixed_releases_are_refused(tmp_path, builder):
    _, simulate_and_catalog = builder
    config = SimulationConfig(size=24, cadences=3, stars=10, bright=0, seed=9, compress=False)
    result = simulate_and_catalog(tmp_path, config)
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    shutil.copy(result["ffis"][1], copy / (result["ffis"][1].name + ".gz"))
    with pytest.raises(FrameSetError, match="duplicate"):
        collect_frames(tmp_path, 1, 1, 4)
    shutil.rmtree(copy)
    from astropy.io import fits

    fits.setval(result["ffis"][2], "DATA_REL", value=31, ext=0)
    with pytest.raises(FrameSetError, match="data releases"):
        collect_frames(tmp_path, 1, 1, 4)
    assert main(["prepare", str(tmp_path), "-q", "-j", "1"]) == 1


@pytest.mark.parametrize(("sector", "window"), [(30, 19), (60, 55)])
def test_faster_cadences(tmp_path, builder, sector, window):
    """600-s and 200-s sectors: the smoothing window follows the cadence."""
    build, _ = builder
    config = SimulationConfig(
        sector=sector,
        camera=2,
        ccd=1,
        size=32,
        cadences=40,
        stars=30,
        bright=0,
        seed=sector,
        compress=False,
    )
    prepared = build(tmp_path, config)
    with PreparedCube(prepared.hdf5) as cube:
        assert cube.attrs["cadence"] == {30: 600, 60: 200}[sector]
        assert cube.settings["smoothing_frames"] == window
        assert np.isfinite(cube.read("backgrounds")).all()


def test_without_catalog_jitter_comes_from_the_wcs(tmp_path, builder):
    _, simulate_and_catalog = builder
    config = SimulationConfig(size=40, cadences=20, stars=40, bright=0, seed=12, compress=False)
    result = simulate_and_catalog(tmp_path, config)
    next(tmp_path.glob("catalog_*.sqlite")).unlink()
    out = prepare_ccd(tmp_path, 1, 1, 4, workers=1, progress=False)
    score = score_prepared(out, result["truth"])
    with h5py.File(out, "r") as h5:
        assert h5["motion"].attrs["source"] == "wcs"
    assert score.jitter_error_rms < 0.005  # the simulated per-frame WCS is exact


def test_parallel_workers_give_the_same_result(tmp_path, builder):
    """Worker processes (shared ring and block, chunks compressed in the workers and written
    as they are) give the very file of the run in one process: two blocks, the last partial,
    a region that is not whole chunks."""
    build, simulate_and_catalog = builder
    config = SimulationConfig(size=72, cadences=40, stars=60, bright=0, seed=13, compress=False)
    simulate_and_catalog(tmp_path, config)
    one = prepare_ccd(tmp_path, 1, 1, 4, workers=1, progress=False, output=tmp_path / "one.hdf5")
    two = prepare_ccd(tmp_path, 1, 1, 4, workers=2, progress=False, output=tmp_path / "two.hdf5")
    with h5py.File(one, "r") as a, h5py.File(two, "r") as b:
        for name in ("images", "images_err", "pixel_flags", "background_mesh", "sumimage"):
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)
        np.testing.assert_array_equal(a["centroids"][()], b["centroids"][()])
    with PreparedCube(one) as a, PreparedCube(two) as b:
        for name in ("images", "images_err"):
            np.testing.assert_array_equal(a.read(name), b.read(name))


def test_frames_in_bands_give_the_file_of_whole_frames(tmp_path, builder, monkeypatch):
    """The per-frame work done in bands of rows (binning, anomalies, rounding of the
    errors, background subtraction and encoding) gives the very file of whole frames: a
    region whose rows are not whole bands, nor a multiple of the binning."""
    from tessphot.prepare import background, background_anomalies, codec, encode

    build, simulate_and_catalog = builder
    config = SimulationConfig(size=75, cadences=6, stars=60, bright=1, seed=17, compress=False)
    simulate_and_catalog(tmp_path, config)
    whole = prepare_ccd(tmp_path, 1, 1, 4, progress=False, output=tmp_path / "whole.hdf5")
    monkeypatch.setattr(background, "BIN_BAND_PIXELS", 7 * 38 * 4)
    monkeypatch.setattr(background_anomalies, "ANOMALY_BAND_PIXELS", 5 * 38 * 4)
    monkeypatch.setattr(codec, "ROUNDING_CHUNK", 1000)
    monkeypatch.setattr(encode, "FINISH_ROWS", 15)
    bands = prepare_ccd(tmp_path, 1, 1, 4, progress=False, output=tmp_path / "bands.hdf5")
    with h5py.File(whole, "r") as a, h5py.File(bands, "r") as b:
        for name in ("images", "images_err", "pixel_flags", "background_frame_mesh", "sumimage"):
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)


def test_the_stream_holds_the_meshes_of_a_window_not_of_every_frame(tmp_path, builder, monkeypatch):
    """The main process keeps only the meshes its next smoothing windows need (whatever
    the number of frames), and every frame's smoothed mesh is the fit over all frames'."""
    from tessphot.prepare import stream
    from tessphot.prepare.smoothing import smooth_in_time

    _, simulate_and_catalog = builder
    config = SimulationConfig(size=24, cadences=40, stars=10, bright=0, seed=21, compress=False)
    simulate_and_catalog(tmp_path, config)
    held = []
    finish = stream._Stream._finish_task

    def counted(self, k, slot, block_start):
        held.append(len(self.meshes))
        return finish(self, k, slot, block_start)

    monkeypatch.setattr(stream._Stream, "_finish_task", counted)
    out = prepare_ccd(tmp_path, 1, 1, 4, progress=False, output=tmp_path / "p.hdf5")
    with h5py.File(out, "r") as h5:
        window = int(json.loads(h5.attrs["settings"])["smoothing_frames"])
        settings = json.loads(h5.attrs["settings"])["background"]
        meshes = h5["background_frame_mesh"][()]
        errors = h5["background_frame_mesh_err"][()]
        smoothed = h5["background_mesh"][()]
        times = h5["time"][()]
    assert len(held) == 40 and 2 < window < 20
    assert max(held) <= 2 * window
    valid = np.all(np.isfinite(meshes), axis=(1, 2))
    half = window // 2
    for k in range(40):
        value, _ = smooth_in_time(
            meshes, errors, times, valid, k, half, settings["curvature_sigma"]
        )
        np.testing.assert_array_equal(smoothed[k], value.astype(np.float32))


def test_manual_excludes():
    image = np.ones((100, 100))
    mask, reasons = manual_exclude(image, 1, 4, 4700, 1325.5, 1325.5, (0, 1500), simulated=False)
    assert mask[:, 36:].all() and not mask[:, :36].any() and "Mars" in reasons[0]
    mask, _ = manual_exclude(image, 1, 4, 4700, 1325.5, 1325.5, (0, 1500), simulated=True)
    assert not mask.any()  # real spacecraft events are not applied to simulated data
    mask, reasons = manual_exclude(image, 1, 2, 11360, 1464.1, 1464.1, (0, 0), simulated=False)
    assert mask.all() and "Earthshine" in reasons[0]
    mask, reasons = manual_exclude(np.zeros((10, 10)), 3, 3, 99999, 3000, 3000, (0, 0), True)
    assert mask.all() and "empty" in reasons[0]


def test_cli(tmp_path, builder, capsys):
    _, simulate_and_catalog = builder
    simulate_and_catalog(
        tmp_path, SimulationConfig(size=24, cadences=4, stars=10, bright=0, seed=14, compress=False)
    )
    assert main(["prepare", str(tmp_path), "-q", "-j", "1", "--camera", "1"]) == 0
    assert "Prepared:" in capsys.readouterr().out
    assert main(["prepare", str(tmp_path), "-q", "--sector", "5"]) == 1
