"""The error of the aperture's motion correction from the PRF alone (issue 18).

``python benchmarks/bench_prf_motion.py --folder DIR [--variants V ...] [--masks RUN]``

``DIR`` is a simulated sector with PRF differences, prepared, with the variants' prepared
files in ``DIR/focus/<variant>.hdf5`` and the aperture photometry of one of them in
``DIR/focus/<RUN>`` (``bench_focus.py``; default ``truthhalo-aperture``; or a path). A variant
``prepared`` is the sector's own prepared file, ``DIR/<name>.hdf5``.

The aperture photometry corrects its flux by the fraction of the star's light in the
aperture, cadence by cadence (:mod:`tessphot.photometry.scene`). Where the PRF is wrong,
so is that fraction's change with the pointing, and the correction leaves (or adds) a part
of the motion in the light curve. This measures that part alone, without photon noise or
the jitter model's errors: for every isolated star of ``Tmag < --faintest`` (contamination
in the run's todo list at most 0.1), on the pixels of its aperture in ``RUN`` and at
its true position of every cadence,

* the truth's fraction, from the PRF the simulator rendered the star with at that
  cadence's focus (:func:`tessphot.evaluation.simulate.prf_differences.exact_prf`), mixed
  with its halo (the truth's share; the halo's surface without the simulator's taper);
* each variant's fraction, from its effective PRF at that cadence (with its focus scale)
  mixed with its halo (:class:`tessphot.prf.star_halo.StarHalos`),

each relative to its mean over the good cadences; the error is their difference, its rms
over the good cadences in ppm. Printed per Tmag bin: the median over the stars of the
error and of the truth's own motion term (what the correction takes out). Each star's PRF
shape is kept at its mean position, as the simulator renders it.

Single process; tens of seconds on 120 cadences (run by hand; nothing here is a test).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np
from astropy.io import fits
from bench_focus import PPM, prepared

from tessphot.evaluation.scoring.neighbour_light import mask_fractions
from tessphot.evaluation.scoring.photometry import _truth, find_truth, lightcurve_path, todo_rows
from tessphot.evaluation.scoring.systematics import photometric_pixels
from tessphot.evaluation.simulate.prf_differences import PRFField, TransformedPRF
from tessphot.evaluation.simulate.truth import read_prf_differences
from tessphot.prepare.effective_prf import read_effective_prf, read_star_halos
from tessphot.prf import load_prf
from tessphot.prf.focus import FocusedPRF
from tessphot.prf.star_halo import HaloShape

#: Tmag bins of the table.
BINS = (6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0)
#: Largest contamination of a star scored (isolated).
MAX_CONTAMINATION = 0.1
#: Margin of the truth's PRF region beyond the prepared region [px].
MARGIN = 8


class Apertures:
    """The scored stars' apertures: padded pixel lists (``valid`` marks the real ones)."""

    def __init__(self, pixels: list[tuple[np.ndarray, np.ndarray]]) -> None:
        size = max(p[0].size for p in pixels)
        self.rows = np.zeros((len(pixels), size), dtype=int)
        self.cols = np.zeros((len(pixels), size), dtype=int)
        self.valid = np.zeros((len(pixels), size), dtype=bool)
        for i, (r, c) in enumerate(pixels):
            self.rows[i, : r.size], self.cols[i, : c.size], self.valid[i, : r.size] = r, c, True
        self.pixels = pixels

    def fractions(self, prf, rows: np.ndarray, cols: np.ndarray, nodes) -> np.ndarray:
        """Each star's PRF summed on its aperture, the stars at ``(rows, cols)`` (n,)."""
        return mask_fractions(prf, rows, cols, self.rows, self.cols, *nodes, valid=self.valid)

    def halo_fractions(self, shape: HaloShape, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Each star's unit halo summed on its aperture at every cadence (n_cadences, n)."""
        out = np.empty((rows.shape[0], len(self.pixels)))
        for s, (r, c) in enumerate(self.pixels):
            origin = (int(r.min()), int(c.min()))
            mask = np.zeros((r.max() - origin[0] + 1, c.max() - origin[1] + 1), dtype=bool)
            mask[r - origin[0], c - origin[1]] = True
            out[:, s] = shape.fractions(mask, origin, rows[:, s], cols[:, s])
        return out


def scored_stars(run: Path, starid: np.ndarray, tmag: np.ndarray, faintest: float):
    """Indices (into the truth's stars) of the isolated stars with a light curve, and apertures.

    The run's todo list chooses them; only their light curves are opened (for the pixels).
    """
    index = {int(s): i for i, s in enumerate(starid)}
    chosen, pixels = [], []
    for star, _, status, lc, contamination, _ in todo_rows(run):
        i = index.get(int(star))
        if i is None or status is None or not tmag[i] < faintest:
            continue
        if contamination is None or not contamination <= MAX_CONTAMINATION:
            continue
        path = lightcurve_path(run, run / "lightcurves", lc)
        if path is None:
            continue
        with fits.open(path) as hdul:
            pixels.append(photometric_pixels(hdul["APERTURE"]))
        chosen.append(i)
    return np.array(chosen, dtype=int), Apertures(pixels)


def variant_model(path: Path):
    """A variant's effective PRF (focused when it has a focus) and its halos."""
    with h5py.File(path, "r") as h5:
        prf, halos = read_effective_prf(h5), read_star_halos(h5)
    if prf is None:
        raise SystemExit(f"{path}: no effective PRF")
    return prf, halos


def motion_errors(folder: Path, variants: list[str], masks: str, faintest: float, prf_dir: str):
    """Per variant and scored star: the error's rms [ppm]; and the truth's motion term."""
    truth_file = find_truth(folder)
    truth = _truth(truth_file)
    with h5py.File(truth_file, "r") as h5:
        differences = read_prf_differences(h5)
    if differences is None:
        raise SystemExit(f"{truth_file}: the simulation has no PRF differences")
    starid = np.asarray(truth["stars"]["starid"])
    tmag = np.asarray(truth["stars"]["tmag"], dtype=float)
    run = Path(masks) if Path(masks).is_dir() else folder / "focus" / masks
    stars, apertures = scored_stars(run, starid, tmag, faintest)
    rows, cols = truth["row"][:, stars], truth["col"][:, stars]
    good = np.all(np.isfinite(rows) & np.isfinite(cols), axis=1)
    rows, cols = rows[good], cols[good]
    cadences = np.flatnonzero(good)
    nodes = (np.nanmean(rows, axis=0), np.nanmean(cols, axis=0))
    with h5py.File(prepared(folder), "r") as h5:
        origin, shape = tuple(int(v) for v in h5.attrs["origin"]), tuple(h5.attrs["shape"])
    region = (
        origin[0] - MARGIN,
        origin[0] + shape[0] + MARGIN,
        origin[1] - MARGIN,
        origin[1] + shape[1] + MARGIN,
    )
    rendered = TransformedPRF(load_prf(prf_dir, 1, 1, 4), PRFField(**differences["field"]), region)
    focus = np.asarray(differences["focus"], dtype=float)[cadences]
    share = np.asarray(differences["halo_fraction"], dtype=float)[stars]
    true_frac = np.stack(
        [
            apertures.fractions(rendered.model(f), rows[n], cols[n], nodes)
            for n, f in enumerate(focus)
        ]
    )
    if differences.get("halo"):
        halo = differences["halo"]
        shape_true = HaloShape(halo["core"], halo["index"], halo["radius"])
        halo_frac = apertures.halo_fractions(shape_true, rows, cols)
        true_frac = (1 - share) * true_frac + share * halo_frac
    true_rel = true_frac / true_frac.mean(axis=0)
    out = {}
    for variant in variants:
        path = prepared(folder) if variant == "prepared" else folder / "focus" / f"{variant}.hdf5"
        prf, halos = variant_model(path)
        frac = np.stack(
            [
                apertures.fractions(
                    prf.model_at(k) if isinstance(prf, FocusedPRF) else prf, rows[n], cols[n], nodes
                )
                for n, k in enumerate(cadences)
            ]
        )
        if halos is not None:
            h = halos.of(starid[stars], tmag[stars])
            frac = (1 - h) * frac + h * apertures.halo_fractions(halos.shape, rows, cols)
        error = true_rel - frac / frac.mean(axis=0)
        out[variant] = np.std(error, axis=0) * PPM
    return tmag[stars], np.std(true_rel, axis=0) * PPM, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--variants", nargs="+", default=["focus", "exact", "truthhalo"])
    parser.add_argument(
        "--masks", default="truthhalo-aperture", help="run giving the apertures (or its path)"
    )
    parser.add_argument("--faintest", type=float, default=11.0, help="faintest Tmag scored")
    parser.add_argument("--prf-dir", default="/work/shared/data/prf")
    args = parser.parse_args()
    tmag, motion, errors = motion_errors(
        args.folder, args.variants, args.masks, args.faintest, args.prf_dir
    )
    print(f"{tmag.size} isolated stars; median rms over the good cadences [ppm]")
    print("Tmag  |   n | motion | " + " | ".join(f"{v:>10s}" for v in errors))
    for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
        which = (tmag >= lo) & (tmag < hi)
        if not which.any():
            continue
        cells = " | ".join(f"{np.median(e[which]):10.1f}" for e in errors.values())
        term = np.median(motion[which])
        print(f"{lo:2.0f}-{hi:<2.0f} | {which.sum():3d} | {term:6.0f} | {cells}")


if __name__ == "__main__":
    main()
