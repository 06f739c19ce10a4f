"""The light of catalogued stars in a fixed aperture, and the motion correction."""

import math

import numpy as np
import pytest

from tessphot.io.errors import TessphotError
from tessphot.photometry.scene import (
    ANALYTIC_PRF,
    MIN_RELATIVE_LIGHT,
    _recorded_prf,
    aperture_fractions,
    aperture_light,
    ccd_prf,
)
from tessphot.prf import load_prf

ORIGIN = (1000, 1000)
SHAPE = (15, 15)


def _mask():
    mask = np.zeros(SHAPE, bool)
    mask[5:10, 5:9] = True
    return mask


def _direct(prf, mask, rows, cols, node_rows, node_cols):
    """Fractions by rendering every star at every position (the slow, obvious way)."""
    out = np.empty(rows.shape)
    for t in range(rows.shape[0]):
        for j in range(rows.shape[1]):
            image = prf.render(
                rows[t, j], cols[t, j], 1.0, SHAPE, ORIGIN, [node_rows[j]], [node_cols[j]]
            )
            out[t, j] = image[mask].sum()
    return out


@pytest.mark.parametrize("spoc", [False, True])
def test_fractions_match_direct_rendering(spoc, request):
    prf = load_prf(request.getfixturevalue("prf_dir") if spoc else None, 1, 1, 4)
    rng = np.random.default_rng(1)
    node_rows = np.array([1007.2, 1004.0, 1016.5])  # target, neighbour, star off the stamp
    node_cols = np.array([1006.6, 1010.3, 1007.0])
    shifts = np.cumsum(rng.normal(0, 0.08, (40, 2)), axis=0)
    rows = node_rows[None, :] + shifts[:, :1]
    cols = node_cols[None, :] + shifts[:, 1:]
    rows[7, 1] = np.nan
    got = aperture_fractions(prf, _mask(), ORIGIN, rows, cols, node_rows, node_cols)
    want = _direct(prf, _mask(), np.nan_to_num(rows), cols, node_rows, node_cols)
    assert np.isnan(got[7, 1])
    ok = np.isfinite(got)
    assert np.abs(got[ok] - want[ok]).max() < 1e-5  # bilinear between knots: exact
    assert got[:, 0].min() > 0.5  # the target is mostly in the aperture
    assert got[:, 2].max() < 0.05  # the star off the stamp reaches it with its wings only


def test_motion_correction_removes_the_pointing(prf_dir):
    """A constant target and a variable neighbour under 0.4-px jumps: the corrected flux is
    flat to the neighbour's variability times its (small) fraction."""
    prf = load_prf(prf_dir, 1, 1, 4)
    rng = np.random.default_rng(2)
    n = 200
    shifts = np.zeros((n, 2))
    shifts[60:] += (0.3, -0.25)  # momentum dumps
    shifts[140:] += (-0.4, 0.1)
    shifts += rng.normal(0, 0.01, (n, 2))
    node_rows = np.array([1007.3, 1005.0])
    node_cols = np.array([1006.8, 1010.6])
    flux = np.array([5000.0, 20000.0])
    rows = node_rows[None, :] + shifts[:, :1]
    cols = node_cols[None, :] + shifts[:, 1:]
    mask = _mask()
    true = _direct(prf, mask, rows, cols, node_rows, node_cols)
    aperture = true @ flux
    good = np.ones(n, bool)
    light = aperture_light(
        prf, mask, ORIGIN, np.array([1, 2]), flux, rows, cols, node_rows, node_cols, good
    )
    corrected, scale = light.corrected(aperture)
    raw_scatter = np.std(aperture) / np.mean(aperture)
    scatter = np.std(corrected) / np.mean(corrected)
    print(f"\nrelative scatter: raw {raw_scatter:.2e}, corrected {scatter:.2e}")
    assert raw_scatter > 0.01
    assert scatter < 1e-4
    assert np.mean(corrected) == pytest.approx(np.mean(aperture), rel=1e-3)
    want = (true.mean(0)[1] * flux[1]) / (true.mean(0) @ flux)
    assert light.contamination == pytest.approx(want, rel=1e-3)
    assert 0.0 < light.contamination < 1.0
    # Unknown positions: no correction on those cadences.
    rows[5] = np.nan
    light = aperture_light(
        prf, mask, ORIGIN, np.array([1, 2]), flux, rows, cols, node_rows, node_cols, good
    )
    corrected, scale = light.corrected(aperture)
    assert scale[5] == 1.0 and np.isfinite(corrected).all()


def test_faint_far_stars_are_left_out():
    prf = load_prf(None, 1, 1, 4)
    rows = np.array([[1007.0, 1012.0, 1007.0]])
    cols = np.array([[1007.0, 1007.0, 1012.0]])
    flux = np.array([1e4, 1e4 * MIN_RELATIVE_LIGHT * 1e-3, 1e6])
    light = aperture_light(
        prf,
        _mask(),
        ORIGIN,
        np.array([7, 8, 9]),
        flux,
        rows,
        cols,
        rows[0],
        cols[0],
        np.ones(1, bool),
    )
    assert list(light.starid) == [7, 9]
    assert math.isfinite(light.contamination)


def test_prf_choice(tmp_path, prf_dir):
    assert (
        ccd_prf('{"prf": "analytic"}', "", 1, 1, 4).short_name == load_prf(None, 1, 1, 4).short_name
    )
    spoc = ccd_prf("{}", str(prf_dir), 1, 1, 4)
    assert spoc.short_name == load_prf(prf_dir, 1, 1, 4).short_name
    with pytest.raises(TessphotError, match="not found"):
        ccd_prf(f'{{"prf": "{tmp_path / "gone"}"}}', "", 1, 1, 4)
    with pytest.raises(TessphotError, match="cannot read"):
        ccd_prf("{}", str(tmp_path), 1, 1, 4)


@pytest.mark.parametrize("spoc", [False, True])
def test_group_mean_images_match_direct_rendering(spoc, request):
    """The mean PRF image of each group of cadences is exact, a pointing jump inside a
    group included (the mean of the images, not the image at the mean position)."""
    from tessphot.photometry.scene_groups import group_mean_images

    prf = load_prf(request.getfixturevalue("prf_dir") if spoc else None, 1, 1, 4)
    rng = np.random.default_rng(2)
    node = (1007.2, 1006.6)
    n = 30
    rows = node[0] + rng.normal(0, 0.02, n)
    cols = node[1] + rng.normal(0, 0.02, n)
    rows[12:] += 0.35  # a momentum dump in the middle of group 1
    rows[20] = np.nan
    group = np.repeat([0, 1, 2], 10)
    group[5] = -1
    got = group_mean_images(prf, rows, cols, node, group, 3, ORIGIN, SHAPE)
    for g in range(3):
        use = (group == g) & np.isfinite(rows)
        images = [
            prf.render(r, c, 1.0, SHAPE, ORIGIN, [node[0]], [node[1]])
            for r, c in zip(rows[use], cols[use], strict=True)
        ]
        assert np.abs(got[g] - np.mean(images, axis=0)).max() < 1e-5  # as the fractions
    at_mean = prf.render(
        np.nanmean(rows[10:20]), np.mean(cols[10:20]), 1.0, SHAPE, ORIGIN, [node[0]], [node[1]]
    )
    assert np.abs(got[1] - at_mean).max() > 1e-3  # the jump makes the difference


def test_aperture_fractions_follow_a_focused_prf():
    """Each cadence's fractions are those of the PRF at that cadence's width scale."""
    from tessphot.prf import AnalyticPRF
    from tessphot.prf.effective import EffectivePRF
    from tessphot.prf.focus import FocusedPRF, scaled_model

    base = AnalyticPRF(fwhm=1.6)
    static = EffectivePRF(
        base.tables, base.node_rows, base.node_cols, "t", "t", base_name="t", base_analytic=True
    )
    scale = 1 + 0.02 * np.exp(-np.arange(30) / 8.0)
    prf = FocusedPRF(static, scale)
    rng = np.random.default_rng(3)
    rows = 10.3 + 0.1 * rng.standard_normal((30, 2)) + np.array([0.0, 3.0])
    cols = 11.6 + 0.1 * rng.standard_normal((30, 2)) + np.array([0.0, -2.5])
    rows[4, 1] = np.nan
    mask = np.zeros((21, 21), bool)
    mask[8:13, 9:14] = True
    node_rows, node_cols = rows[0], cols[0]
    got = aperture_fractions(prf, mask, (0, 0), rows, cols, node_rows, node_cols)
    static_fractions = aperture_fractions(static, mask, (0, 0), rows, cols, node_rows, node_cols)
    assert np.isnan(got[4, 1]) and np.isfinite(got[4, 0])
    for k in (0, 10, 29):
        want = aperture_fractions(
            scaled_model(static, scale[k]), mask, (0, 0), rows[k : k + 1], cols[k : k + 1],
            node_rows, node_cols,
        )[0]  # fmt: skip
        np.testing.assert_allclose(got[k], want, atol=2e-5)
    # The broader PRF at the start puts less of the target's light in the aperture.
    assert got[0, 0] < static_fractions[0, 0] - 1e-3


def test_recorded_prf_decoded_once_is_the_settings_own():
    """The prepare stage's PRF, cached per settings text: what the JSON says (else analytic)."""
    for text, expected in (
        ('{"prf": "/data/prfs", "other": 1}', "/data/prfs"),
        ('{"prf": ""}', ANALYTIC_PRF),
        ('{"prf": null}', ANALYTIC_PRF),
        ("{}", ANALYTIC_PRF),
    ):
        assert _recorded_prf(text) == _recorded_prf(text) == expected
