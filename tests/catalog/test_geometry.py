"""Proper motion, spherical helpers and CCD footprints."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time

from tessphot.catalog import CatalogError, sphere
from tessphot.catalog.footprint import ccd_footprint
from tessphot.catalog.motion import julian_epoch, propagate
from tessphot.geometry import sector_geometry


# ---- proper motion ------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:ERFA function")  # "distance overridden": no parallax
def test_propagation_matches_astropy_space_motion():
    ra = np.array([10.0, 200.0, 359.99, 45.0, 120.0, 0.0, 300.0])
    dec = np.array([0.0, -45.0, 89.9, -89.95, 60.0, -30.0, 89.999])
    pm_ra = np.array([100.0, -3000.0, 500.0, 10000.0, -5.0, 0.0, 2000.0])
    pm_dec = np.array([-200.0, 800.0, -100.0, -4000.0, 3.0, 0.0, -900.0])
    jd = 2460000.5
    years = julian_epoch(jd) - 2000.0
    new_ra, new_dec = propagate(ra, dec, pm_ra, pm_dec, years)
    start = SkyCoord(
        ra * u.deg,
        dec * u.deg,
        pm_ra_cosdec=pm_ra * u.mas / u.yr,
        pm_dec=pm_dec * u.mas / u.yr,
        obstime=Time(2000.0, format="jyear", scale="tt"),
    )
    expected = start.apply_space_motion(new_obstime=Time(jd, format="jd", scale="tt"))
    sep = SkyCoord(new_ra * u.deg, new_dec * u.deg).separation(expected)
    assert np.all(sep.to_value(u.uas) < 1.0)
    # Near the pole the original's linear RA/Dec formula is far off; we are not.
    lin_dec = dec[2] + pm_dec[2] * years / 3.6e6
    lin_ra = ra[2] + pm_ra[2] * years / 3.6e6 / np.cos(np.radians(dec[2]))
    linear = SkyCoord(lin_ra * u.deg, lin_dec * u.deg)
    assert linear.separation(expected[2]).to_value(u.mas) > 1.0


def test_unknown_motion_keeps_the_position():
    ra, dec = propagate([12.5, 359.0], [-3.0, 88.0], [np.nan, 0.0], [np.nan, 0.0], 25.0)
    assert ra.tolist() == [12.5, 359.0] and dec.tolist() == [-3.0, 88.0]


def test_julian_epoch():
    assert julian_epoch(2451545.0) == 2000.0
    assert julian_epoch(2451545.0 + 365.25 * 18.5) == pytest.approx(2018.5)


# ---- sphere helpers -----------------------------------------------------------------------
def _arc_points(a, b, n=20001):
    t = np.linspace(0.0, 1.0, n)[:, None]
    return sphere.normalise((1 - t) * a + t * b)


def test_arc_distance_against_dense_sampling():
    rng = np.random.default_rng(5)
    vertices = sphere.radec_to_xyz([10.0, 14.0, 13.0, 9.5], [-5.0, -4.0, 1.0, 0.5])
    points = sphere.radec_to_xyz(rng.uniform(5, 18, 300), rng.uniform(-9, 5, 300))
    dense = np.concatenate(
        [_arc_points(vertices[i], vertices[(i + 1) % 4]) for i in range(4)], axis=0
    )
    brute = np.arccos(np.clip(points @ dense.T, -1, 1)).min(axis=1)
    got = sphere.min_arc_distance(points, vertices)
    assert np.allclose(got, brute, atol=2e-6)  # dense sampling step ~ 1e-5 rad


def test_point_in_polygon_paths_agree_and_handle_wrap_and_pole():
    rng = np.random.default_rng(2)
    # Across RA 0, and around the north pole.
    for ra, dec in (
        ([358.0, 3.0, 2.0, 357.5], [-2.0, -1.0, 3.0, 2.5]),
        ([0, 90, 180, 270], [85] * 4),
    ):
        vertices = sphere.radec_to_xyz(ra, dec)
        centre = sphere.polygon_centre(vertices)
        pts = sphere.normalise(centre + rng.normal(0, 0.08, (3000, 3)))
        small = np.concatenate(
            [sphere.polygon_contains(pts[i : i + 20], vertices) for i in range(0, 3000, 20)]
        )
        large = sphere.polygon_contains(pts, vertices)  # takes the matplotlib path
        assert np.array_equal(small, large) and 0 < large.sum() < 3000
        # Convex half-space test agrees too.
        normals = sphere.convex_polygon_normals(vertices)
        assert np.array_equal(np.all(pts @ normals.T >= 0, axis=1), large)
        # The 3-D box holds every point inside (the pole polygon reaches z = 1).
        lo, hi = sphere.polygon_bbox(vertices)
        inside = pts[large]
        assert np.all((inside >= lo) & (inside <= hi))
    assert hi[2] == 1.0


def test_cap_bbox_contains_the_cap():
    rng = np.random.default_rng(4)
    centre = sphere.radec_to_xyz(123.0, -71.0)
    radius = np.radians(2.0)
    lo, hi = sphere.cap_bbox(centre, radius)
    pts = sphere.normalise(centre + rng.normal(0, 0.05, (20000, 3)))
    pts = pts[pts @ centre >= np.cos(radius)]
    assert np.all((pts >= lo) & (pts <= hi))


# ---- footprints ---------------------------------------------------------------------------
@pytest.mark.parametrize(("sector", "camera", "ccd"), [(1, 1, 4), (1, 4, 1), (60, 3, 2)])
def test_stars_on_the_ccd_are_inside_and_far_ones_outside(sector, camera, ccd):
    rng = np.random.default_rng(sector + camera + ccd)
    wcs = sector_geometry(sector, camera, ccd).science_wcs
    fp0 = ccd_footprint(sector, camera, ccd, 0.0)
    fp = ccd_footprint(sector, camera, ccd, 0.2)
    on = rng.uniform(-0.49, 2047.49, (2, 5000))
    corners = np.array([[-0.49, -0.49, 2047.49, 2047.49], [-0.49, 2047.49, -0.49, 2047.49]])
    cols, rows = np.concatenate([on, corners], axis=1)
    ra, dec = wcs.all_pix2world(cols, rows, 0)
    assert fp0.contains(ra, dec).all() and fp.contains(ra, dec).all()
    # Off the CCD by 1-10 px: outside without buffer, inside with 0.2 deg (~34 px).
    off = np.concatenate([rng.uniform(-10, -1, 500), rng.uniform(2048.5, 2057, 500)])
    along = rng.uniform(0, 2047, 1000)
    ra, dec = wcs.all_pix2world(np.concatenate([off, along]), np.concatenate([along, off]), 0)
    assert not fp0.contains(ra, dec).any() and fp.contains(ra, dec).all()
    # Far away (a degree off the CCD, or the other side of the sky): outside.
    far = np.array([-400.0, 2500.0])
    ra, dec = wcs.all_pix2world(far, far[::-1], 0)
    c_ra, c_dec = sphere.xyz_to_radec(-fp.centre)
    assert not fp.contains(np.append(ra, c_ra), np.append(dec, c_dec)).any()


@pytest.mark.parametrize(("sector", "camera", "ccd"), [(1, 1, 4), (13, 4, 3)])
def test_buffer_is_a_true_angle_on_the_sphere(sector, camera, ccd):
    """Points at a known angular distance outside an edge or beyond a corner: inside the
    0.2-deg buffer when closer than 0.2 deg, outside when farther; at any declination."""
    fp = ccd_footprint(sector, camera, ccd, 0.2)
    b = fp.boundary
    normals = sphere.normalise(sphere.cross(b, np.roll(b, -1, axis=0)))
    mids = sphere.normalise(b + np.roll(b, -1, axis=0))
    edges = np.r_[8:56, 72:120, 136:184, 200:248]  # away from the corners
    for d, expect in ((0.195, True), (0.205, False)):
        r = np.radians(d)
        pts = np.cos(r) * mids[edges] - np.sin(r) * normals[edges]
        assert np.all(fp.contains_xyz(pts) == expect)
    # Beyond a corner, along the bisector: the buffer is rounded there (a polygon grown by
    # moving its vertices would reach 0.2 * sqrt(2) deg).
    c = fp.corners
    n = sphere.normalise(sphere.cross(c, np.roll(c, -1, axis=0)))
    for k in range(4):
        out = sphere.normalise(-(n[k] + n[k - 1]))
        out = sphere.normalise(out - (out @ c[k]) * c[k])
        for d, expect in ((0.19, True), (0.21, False), (0.25, False)):
            r = np.radians(d)
            assert fp.contains_xyz(np.cos(r) * c[k] + np.sin(r) * out)[0] == expect


def test_buffer_grows_the_footprint_and_query_polygon_holds_it():
    rng = np.random.default_rng(8)
    fp = ccd_footprint(1, 2, 1, 0.0)
    big = ccd_footprint(1, 2, 1, 0.5)
    centre, radius = big.bounding_cap()
    pts = sphere.normalise(centre + rng.normal(0, 0.9 * radius, (100000, 3)))
    a, b = fp.contains_xyz(pts), big.contains_xyz(pts)
    assert a.sum() < b.sum() and not np.any(a & ~b)
    assert sphere.polygon_contains(pts[b], big.query_polygon()).all()
    inside_cap = pts[b] @ centre >= np.cos(radius)
    assert inside_cap.all()


def test_bad_footprint_arguments():
    with pytest.raises(CatalogError, match="buffer"):
        ccd_footprint(1, 1, 1, -0.1)
    with pytest.raises(CatalogError, match="unknown sector"):
        ccd_footprint(9999, 1, 1, 0.2)
    with pytest.raises(CatalogError, match="camera and CCD"):
        ccd_footprint(1, 5, 1, 0.2)


# ---- the one great-circle distance and unit-vector conversion -----------------------------
def test_one_distance_and_unit_vectors_match_astropy():
    from tessphot.geometry import angular_distance_deg, radec_to_xyz

    rng = np.random.default_rng(7)
    ra = np.concatenate([rng.uniform(0, 360, 200), [0.0, 359.9999, 180.0, 10.0]])
    dec = np.concatenate([rng.uniform(-90, 90, 200), [89.9999, -89.9999, 0.0, 1e-7]])
    ra0, dec0 = 10.0, 0.0
    truth = SkyCoord(ra, dec, unit="deg").separation(SkyCoord(ra0, dec0, unit="deg")).deg
    # Haversine: double precision at every separation, from 0.4 mas to 180 deg.
    np.testing.assert_allclose(angular_distance_deg(ra, dec, ra0, dec0), truth, rtol=0, atol=1e-11)
    xyz = radec_to_xyz(ra, dec)
    expected = SkyCoord(ra, dec, unit="deg").cartesian.xyz.value.T
    np.testing.assert_allclose(xyz, expected, rtol=0, atol=1e-15)
    assert radec_to_xyz(ra0, dec0).shape == (3,) and sphere.radec_to_xyz is radec_to_xyz
