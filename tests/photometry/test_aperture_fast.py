"""The noise-optimal aperture's fast term: hour-to-hour changes within the groups."""

from __future__ import annotations

import numpy as np
import pytest

from tessphot.photometry.aperture_fast import (
    HourImages,
    accumulate_hours,
    fast_variance,
    group_means,
    hour_bins,
    hour_offsets,
)
from tessphot.photometry.aperture_optimal import (
    optimal_aperture,
)
from tessphot.photometry.aperture_variability import variability_weights
from tessphot.photometry.scene_groups import GroupImages, GroupScene

N_GROUPS = 16
HOURS_PER_GROUP = 30
PER_HOUR = 2  # 30-minute cadences


def _profile(row: float, col: float, shape=(9, 13)) -> np.ndarray:
    """A Gaussian star of unit flux."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    profile = np.exp(-((yy - row) ** 2 + (xx - col) ** 2) / (2 * 0.8**2))
    return profile / profile.sum()


def test_hours_are_runs_of_good_cadences_within_each_group():
    group = np.array([-1, 0, 0, 0, 0, 0, -1, 1, 1, 1, -1, -1, 2])
    hour, n_hours, hour_group = hour_bins(group, 1800.0)
    assert hour.tolist() == [-1, 0, 0, 1, 1, 2, -1, 3, 3, 4, -1, -1, 5]
    assert n_hours == 6 and hour_group.tolist() == [0, 0, 0, 1, 1, 2]
    hour, n_hours, _ = hour_bins(group, 600.0)  # six 10-minute cadences an hour
    assert hour.tolist() == [-1, 0, 0, 0, 0, 0, -1, 1, 1, 1, -1, -1, 2] and n_hours == 3
    hour, n_hours, _ = hour_bins(np.full(4, -1), 1800.0)
    assert n_hours == 0 and (hour == -1).all()


def test_hour_sums_give_the_means_of_hours_and_groups():
    rng = np.random.default_rng(1)
    group = np.repeat([0, 0, -1, 1, 1], 3)
    hour, n_hours, hour_group = hour_bins(group, 1800.0)
    frames = rng.normal(size=(group.size, 2, 3))
    frames[4, 0, 0] = np.nan
    sums, counts = np.zeros((n_hours, 2, 3)), np.zeros((n_hours, 2, 3))
    for t0 in range(0, group.size, 4):  # in blocks that cut hours
        accumulate_hours(sums, counts, frames[t0 : t0 + 4], hour[t0 : t0 + 4])
    groups, hours = group_means(sums, counts, hour_group, 2)
    for g in range(2):
        np.testing.assert_allclose(groups[g], np.nanmean(frames[group == g], axis=0))
    for h in range(n_hours):
        np.testing.assert_allclose(hours[h], np.nanmean(frames[hour == h], axis=0))


def test_hour_offsets_are_the_motion_within_each_group():
    group = np.repeat(np.arange(2), 8)
    hour, n_hours, hour_group = hour_bins(group, 1800.0)
    hours = HourImages(np.zeros((n_hours, 1, 1)), np.full(n_hours, 2.0), hour_group)
    rows = 10.0 + 0.1 * np.arange(16) + 5.0 * group  # a jump between the groups
    cols = np.full(16, 3.0)
    offsets = hour_offsets(rows, cols, hour, hours)
    assert offsets.shape == (n_hours, 2)
    np.testing.assert_allclose(offsets[:4, 0], [-0.3, -0.1, 0.1, 0.3], atol=1e-12)
    np.testing.assert_allclose(offsets[4:, 0], offsets[:4, 0], atol=1e-12)
    assert np.all(offsets[:, 1] == 0)
    rows[group == 1] = np.nan  # an hour without a position
    assert hour_offsets(rows, cols, hour, hours) is None


def _scene(
    own, neighbour, *, neighbour_change=None, own_change=None, jitter=0.0, sky=100.0, seed=5
):
    """Hour images of a target and a neighbour with white noise: 16 groups of 30 hours of
    two 30-minute cadences; ``*_change`` are relative changes per hour, ``jitter`` the
    rms hourly motion of both stars along the rows [px], ``sky`` the sky's variance per
    pixel and cadence."""
    rng = np.random.default_rng(seed)
    n_hours = N_GROUPS * HOURS_PER_GROUP
    hour_group = np.repeat(np.arange(N_GROUPS), HOURS_PER_GROUP)
    variance = own + neighbour + sky
    dr = jitter * rng.standard_normal(n_hours)
    a = np.zeros(n_hours) if own_change is None else own_change
    b = np.zeros(n_hours) if neighbour_change is None else neighbour_change
    own_grad = np.gradient(own, axis=0)
    nbr_grad = np.gradient(neighbour, axis=0)
    images = (
        (1 + a)[:, None, None] * (own[None] - dr[:, None, None] * own_grad[None])
        + (1 + b)[:, None, None] * (neighbour[None] - dr[:, None, None] * nbr_grad[None])
        + rng.standard_normal((n_hours, *own.shape)) * np.sqrt(variance / PER_HOUR)
    )
    hours = HourImages(images, np.full(n_hours, float(PER_HOUR)), hour_group)
    group_mean = images.reshape(N_GROUPS, HOURS_PER_GROUP, *own.shape).mean(axis=1)
    groups = GroupImages(group_mean, np.full(N_GROUPS, float(PER_HOUR * HOURS_PER_GROUP)))
    offsets = np.column_stack([dr, np.zeros(n_hours)])
    offsets -= offsets.reshape(N_GROUPS, HOURS_PER_GROUP, 2).mean(axis=1)[hour_group]
    scene = GroupScene(
        np.repeat(own[None], N_GROUPS, 0), np.repeat(neighbour[None], N_GROUPS, 0), True
    )
    return hours, groups, offsets, scene, variance


def _fast(own, neighbour, hours, groups, offsets, variance):
    """The fast term along the apertures ranked by the target's signal-to-noise."""
    order = np.argsort(-(own / variance).ravel(), kind="stable")
    cum_light, cum_var = np.cumsum(own.ravel()[order]), np.cumsum(variance.ravel()[order])
    weightings = [
        variability_weights(own.ravel()[order], neighbour.ravel()[order], v)
        for v in (variance.ravel()[order], own.ravel()[order])
    ]
    signal = own + neighbour
    return fast_variance(
        hours,
        groups,
        signal,
        order,
        cum_light,
        cum_var,
        weightings,
        neighbour.ravel()[order],
        offsets=offsets,
    ), cum_var / PER_HOUR


@pytest.mark.parametrize("case", ["white", "own variability", "jitter"])
def test_white_noise_the_targets_variability_and_the_motion_are_not_fast_noise(case):
    """Neither the white noise, nor the target's own light changing hour to hour by 2 %,
    nor a motion fitted out per pixel adds a fast term (white noise shares nothing between
    the pixels: no eigenvalue above the white-noise edge)."""
    own, neighbour = 5e3 * _profile(4, 4), 2e3 * _profile(4, 9)
    n_hours = N_GROUPS * HOURS_PER_GROUP
    change = 0.02 * np.sin(np.arange(n_hours) * 2.1) if case == "own variability" else None
    jitter = 0.05 if case == "jitter" else 0.0
    hours, groups, offsets, _, variance = _scene(own, neighbour, own_change=change, jitter=jitter)
    fast, white = _fast(own, neighbour, hours, groups, offsets, variance)
    assert np.all(fast <= 0.01 * white)


def test_a_neighbour_flickering_within_the_hours_is_fast_noise():
    """A neighbour varying by 3 % from hour to hour, with no change between the groups
    (which the slow term would see): its pixels bring a fast term far above the white
    noise (the variance of the neighbour's changing light in the aperture), the target's own
    core almost none."""
    own, neighbour = 5e3 * _profile(4, 4), 2e4 * _profile(4, 7)
    n_hours = N_GROUPS * HOURS_PER_GROUP
    flicker = 0.03 * np.sin(np.arange(n_hours) * 2.1)
    hours, groups, offsets, _, variance = _scene(own, neighbour, neighbour_change=flicker)
    fast, white = _fast(own, neighbour, hours, groups, offsets, variance)
    assert fast[0] < 0.25 * white[0]
    # The whole box: all of the neighbour's light.
    expected = np.var(flicker) * neighbour.sum() ** 2
    assert fast[-1] == pytest.approx(expected, rel=0.1)
    assert fast[-1] > 5 * white[-1]


def _crowded_aperture(neighbour_change, *, use_hours: bool = True) -> tuple[np.ndarray, ...]:
    # Sky-limited, as a faint star is.
    own, neighbour = 300.0 * _profile(4, 4), 900.0 * _profile(4, 5.5)
    hours, groups, offsets, scene, variance = _scene(
        own, neighbour, neighbour_change=neighbour_change, sky=2000.0
    )
    candidates = np.ones(own.shape, dtype=bool)
    chosen = optimal_aperture(
        candidates,
        own + neighbour,
        variance,
        groups,
        PER_HOUR,
        keep=(4, 4),
        scene=scene,
        hours=hours if use_hours else None,
        offsets=offsets,
    )
    return chosen, own, neighbour


def test_a_crowded_star_takes_a_constant_neighbours_pixels_not_a_flickering_ones():
    """A faint star 1.5 px from a brighter one: where the neighbour is constant, pixels
    where its light dominates still add more of the target's light than noise and join
    the aperture; where it flickers within the hours, the fast term keeps them out (the
    slow term alone, blind to it, does not)."""
    quiet, own, neighbour = _crowded_aperture(None)
    dominated = neighbour > own
    assert quiet[4, 4] and (quiet & dominated).any()
    flicker = 0.3 * np.sin(np.arange(N_GROUPS * HOURS_PER_GROUP) * 2.1)  # eclipses
    loud, *_ = _crowded_aperture(flicker)
    blind, *_ = _crowded_aperture(flicker, use_hours=False)
    assert loud[4, 4] and not (loud & dominated).any()
    assert (blind & dominated).any()


@pytest.mark.parametrize("seed", range(5))
def test_short_data_with_more_pixels_than_hours_give_white_noise_no_fast_term(seed):
    """120 cadences of 30 minutes: 15 groups of 4 hours, 121 pixels, more than the 45
    independent hours (each group's hours sum to nothing): white noise still passes no
    edge."""
    rng = np.random.default_rng(seed)
    n_groups, per_group, shape = 15, 4, (11, 11)
    n_hours = n_groups * per_group
    hour_group = np.repeat(np.arange(n_groups), per_group)
    own = 3e3 * _profile(5, 5, shape)
    variance = own + 200.0
    images = own[None] + rng.standard_normal((n_hours, *shape)) * np.sqrt(variance / PER_HOUR)
    hours = HourImages(images, np.full(n_hours, float(PER_HOUR)), hour_group)
    group_mean = images.reshape(n_groups, per_group, *shape).mean(axis=1)
    groups = GroupImages(group_mean, np.full(n_groups, float(PER_HOUR * per_group)))
    offsets = np.zeros((n_hours, 2))
    fast, white = _fast(own, np.zeros(shape), hours, groups, offsets, variance)
    assert np.all(fast <= 0.01 * white)
