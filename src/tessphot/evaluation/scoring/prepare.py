"""Score a prepared-data file against the simulator's truth (tests, benchmarks, demo)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from tessphot.evaluation.simulate.pointing import move_positions
from tessphot.evaluation.simulate.truth import bin_pixels
from tessphot.prepare.cube import PreparedCube
from tessphot.prf import load_prf

#: Star-free pixels: all stars together put less than this fraction of the noise there.
STAR_FREE_FRACTION = 0.1
#: Pixels within this distance of a bright star count as "near" it [px].
NEAR_BRIGHT_RADIUS = 2.0
#: "Bright" for the near-star bias [Tmag].
BRIGHT_TMAG = 8.0
#: Columns this close to a saturated star (Tmag < 6.5) are left out of "star-free" [px].
BLEED_COLUMNS = 6


@dataclass
class PrepareScore:
    """How well the prepare stage recovered the truth."""

    pixel_noise: float
    background_rms: float
    background_bias: float
    n_star_free: int
    near_bright: list = field(default_factory=list)
    jitter_truth_rms: float = np.nan
    jitter_error_rms: float = np.nan
    jitter_error_max: float = np.nan
    jitter_source: str = ""

    @property
    def background_rms_fraction(self) -> float:
        """Background error rms in star-free pixels relative to the per-pixel noise."""
        return self.background_rms / self.pixel_noise

    def lines(self) -> list[str]:
        """The score as lines of text (background errors, near-star biases, jitter)."""
        out = [
            f"background error in {self.n_star_free} star-free pixels: rms "
            f"{self.background_rms:.4f} e-/s = {self.background_rms_fraction:.1%} of the "
            f"per-pixel noise ({self.pixel_noise:.3f} e-/s), bias {self.background_bias:+.4f} e-/s",
        ]
        for tmag, bias in self.near_bright:
            out.append(
                f"  within {NEAR_BRIGHT_RADIUS:.0f} px of a Tmag {tmag:.1f} star: bias "
                f"{bias:+.4f} e-/s ({bias / self.pixel_noise:+.2f} x noise)"
            )
        out.append(
            f"jitter ({self.jitter_source}): true motion rms {self.jitter_truth_rms:.4f} px, "
            f"model error rms {self.jitter_error_rms:.4f} px, max {self.jitter_error_max:.4f} px"
        )
        return out


def score_prepared(
    prepared: Path, truth: Path, prf_dir: str | None = None, max_frames: int = 40
) -> PrepareScore:
    """Compare backgrounds and the jitter model of a prepared file with the truth.

    Parameters
    ----------
    prepared : pathlib.Path
        The prepared HDF5 file.
    truth : pathlib.Path
        The simulation's truth file.
    prf_dir : str, optional
        Folder of the PRF models the simulation used (None: analytic PRF).
    max_frames : int
        Frames (evenly spread) on which the backgrounds are compared.

    Returns
    -------
    PrepareScore
    """
    with h5py.File(truth, "r") as t, PreparedCube(prepared) as cube:
        n = cube.n_cadences
        frames = np.unique(np.linspace(0, n - 1, min(n, max_frames)).astype(int))
        score = _background_score(t, cube, frames, prf_dir)
        _score_jitter(t, cube, score)
    return score


def _background_score(
    t: h5py.File, cube: PreparedCube, frames: np.ndarray, prf_dir
) -> PrepareScore:
    """Background errors in star-free pixels and near bright stars, on ``frames``."""
    stars = t["stars"][:]
    r0, r1, c0, c1 = (int(v) for v in t.attrs["region"])
    shape = (r1 - r0, c1 - c0)
    prf = load_prf(prf_dir, int(t.attrs["sector"]), int(t.attrs["camera"]), int(t.attrs["ccd"]))
    free_err, noise, near = [], [], {}
    bright = stars[stars["tmag"] < BRIGHT_TMAG]
    # Full frames are stored binned: compare averages over the truth's background binning.
    binning = int(t["background"].attrs.get("binning", 1))
    cols = bin_pixels(np.broadcast_to(np.arange(c0, c1, dtype=float)[None, :], shape), binning)
    rows = bin_pixels(np.broadcast_to(np.arange(r0, r1, dtype=float)[:, None], shape), binning)
    box = (r0, r1, c0, c1)
    for k in frames:
        truth_bkg = t["background"][k]
        model = bin_pixels(cube.block("backgrounds", k, k + 1, box)[0], binning)
        unc = bin_pixels(cube.block("images_err", k, k + 1, box)[0], binning)
        light = prf.render(
            t["row"][k],
            t["col"][k],
            t["flux"][k],
            shape,
            (r0, c0),
            node_rows=stars["row"],
            node_cols=stars["col"],
        )
        starlight = bin_pixels(light, binning)
        pix_noise = float(np.nanmedian(unc))
        free = starlight < STAR_FREE_FRACTION * pix_noise
        for s in stars[stars["tmag"] < 6.5]:
            free &= np.abs(cols - s["col"]) > BLEED_COLUMNS
        diff = model - truth_bkg
        free_err.append(diff[free & np.isfinite(diff)])
        noise.append(pix_noise)
        for s in bright:
            close = np.hypot(rows - s["row"], cols - s["col"]) <= NEAR_BRIGHT_RADIUS
            if close.any():
                near.setdefault(float(s["tmag"]), []).append(diff[close])
    errors = np.concatenate(free_err)
    return PrepareScore(
        pixel_noise=float(np.median(noise)),
        background_rms=float(np.sqrt(np.mean(errors**2))),
        background_bias=float(np.mean(errors)),
        n_star_free=int(errors.size // len(frames)),
        near_bright=[(tm, float(np.mean(np.concatenate(v)))) for tm, v in sorted(near.items())],
    )


def _score_jitter(t: h5py.File, cube: PreparedCube, score: PrepareScore) -> None:
    """Where the motion model puts points of the reference frame, against the truth."""
    r0, r1, c0, c1 = (int(v) for v in t.attrs["region"])
    jitter = t["jitter"][:]
    centre = t["jitter"].attrs["centre"]
    ref = cube.reference_frame
    model = cube.motion()
    gr, gc = (
        a.ravel()
        for a in np.meshgrid(np.linspace(r0, r1 - 1, 5), np.linspace(c0, c1 - 1, 5), indexing="ij")
    )
    # Invert the true reference-frame motion to get the undisturbed positions.
    p0r, p0c = gr.copy(), gc.copy()
    for _ in range(6):
        fr, fc = move_positions(p0r, p0c, *jitter[ref], centre)
        p0r, p0c = p0r + gr - fr, p0c + gc - fc
    times = cube.array("time")
    errs = []
    for k in range(cube.n_cadences):
        tr, tc = move_positions(p0r, p0c, *jitter[k], centre)
        mr, mc = model.positions(gr, gc, times[k])
        errs.append(np.hypot(mr[0] - tr, mc[0] - tc))
    errs = np.array(errs)
    score.jitter_truth_rms = float(np.std(jitter[:, :2]))
    score.jitter_error_rms = float(np.sqrt(np.mean(errs**2)))
    score.jitter_error_max = float(errs.max())
    motion = cube.dataset_attrs("motion")
    score.jitter_source = f"{motion['source']}, {motion['model']}, {motion['n_stars']} stars"
