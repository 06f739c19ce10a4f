"""The target's own variability in the noise-optimal aperture's slow and fast terms.

The target's light changes every aperture alike: it is signal, not noise. Its scale per
group of cadences (or hour) is a linear combination of the pixels (:func:`variability_weights`,
two weightings: :func:`weightings`); :func:`left_variance` is what it leaves of an
aperture's light.
"""

from __future__ import annotations

import numpy as np

from tessphot.photometry.scene_groups import GroupImages, GroupScene


def weightings(
    scene: GroupScene,
    groups: GroupImages,
    pixels: np.ndarray,
    light: np.ndarray,
    var: np.ndarray,
    fitted: np.ndarray | None,
) -> list[np.ndarray]:
    """The pixels' two weightings giving the target's light scale: by S/N and alike.

    See :func:`variability_weights`; zero outside ``fitted`` (None: all of ``pixels``).
    """
    n_groups = len(groups.cadences)
    weights = groups.cadences / groups.cadences.sum()
    own = scene.target.reshape(n_groups, -1)[:, pixels]
    own = np.where(np.isfinite(own), own, light[None, :])
    mean_own = weights @ own
    mean_others = weights @ scene.others.reshape(n_groups, -1)[:, pixels]
    use = fitted if fitted is not None and fitted.any() else np.ones(pixels.size, dtype=bool)
    out = []
    for v in (var, mean_own):  # weighted by signal-to-noise; alike
        coefficients = np.zeros(pixels.size)
        coefficients[use] = variability_weights(mean_own[use], mean_others[use], v[use])
        out.append(coefficients)
    return out


def left_variance(
    target_light: np.ndarray,
    variability: np.ndarray,
    cum_light: np.ndarray,
    weights: np.ndarray,
    white: np.ndarray,
) -> np.ndarray:
    """What the target's variability leaves of its light: its variance over the groups.

    Less what the white noise gives (``white``), never negative, and shrunk by its own
    error: from a few groups (12 on 120 cadences) the estimate ``s`` errs by
    ``e = sqrt(2 sum(weights^2))`` times the groups' variance, and clipped at zero that
    error would add about ``0.4 e`` on average, more the larger the aperture (its white
    noise, and so ``e``, grows). The term is ``s^3 / (s^2 + e^2)``: an estimate well above
    its error stays, one within it counts little.
    """
    left = target_light - variability[:, None] * cum_light[None, :]
    left = left - (weights @ left)[None, :]
    total = weights @ left**2
    estimate = np.clip(total - white, 0.0, None)
    error2 = 2.0 * float(weights @ weights) * total**2
    with np.errstate(invalid="ignore", divide="ignore"):
        shrunk = estimate**3 / (estimate**2 + error2)
    return np.where(estimate > 0, shrunk, 0.0)


def variability_weights(own: np.ndarray, others: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Linear weights ``c`` of the pixels giving the target's light scale ``a = c @ y``.

    ``y`` are the pixels less the others' light, ``own`` the target's light in them and
    ``variance`` their variance. ``a`` and a background offset ``b`` solve
    ``sum(z_j (y - a own - b)) = 0`` for two weightings: ``z_1`` the square of each pixel's
    purity (the target's share of the stars' light, so that a neighbour's pixels hardly
    weigh) times its signal-to-noise ratio ``own / variance``; ``z_2`` the same on the
    pixels fainter than the median (the background's level, which would otherwise bias
    ``a`` by the background error times the mask's size). A bright star's core pixels weigh
    alike (photon noise), its wings less; a faint star's scale comes from its brightest
    pixels, not from the many sky pixels of its mask, whose background errors (not flat
    over the mask) made ``a`` err by a few 0.1 % per group on simulated whole sectors.
    ``variance`` proportional to ``own`` weighs the pixels alike: the whole mask's flux,
    insensitive to the PRF's errors in the core when the star moves. Without a usable
    second weighting, no offset.
    """
    purity = own / (own + np.clip(others, 0.0, None))
    snr = np.where(variance > 0, own / np.where(variance > 0, variance, 1.0), 0.0)
    z1 = purity**2 * snr / max(float(snr.max()), np.finfo(float).tiny)
    z2 = z1 * (own < np.median(own))
    m = np.array([[z1 @ own, z1.sum()], [z2 @ own, z2.sum()]])
    det = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
    if z2.sum() <= 0 or abs(det) <= 1e-9 * abs(m[0, 0] * m[1, 1]):
        return z1 / (z1 @ own)
    # First row of the inverse of m, applied to the weightings.
    return (m[1, 1] * z1 - m[0, 1] * z2) / det
