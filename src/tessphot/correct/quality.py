"""The corrections' ``QUALITY`` bits: TASOC's ``CorrectorQualityFlags``.

The values are those of the TASOC corrections pipeline (``corrections.quality.
CorrectorQualityFlags``), whose light-curve format ours is, so that its readers decode our
flags. Bit 256 is the photometry's (TASOC's ``BackgroundShenanigans``,
:data:`tessphot.photometry.method.QUALITY_BACKGROUND_SHENANIGANS`); the corrections leave
it and every other bit they do not own as the photometry set it.

Set today: :data:`QUALITY_SIGMA_CLIP` (isolated cadences the fit clipped as outliers) and
:data:`QUALITY_JUMP_ADDITIVE_CONSTANT` (the cadences at a jump corrected by shifting the
later flux, :mod:`tessphot.correct.jumps`). The others are named for completeness.
"""

from __future__ import annotations

#: Bad data based on the pixel flags (TASOC's ``FlaggedBadData``).
QUALITY_FLAGGED_BAD_DATA = 1
#: Manual exclude (``ManualExclude``).
QUALITY_MANUAL_EXCLUDE = 2
#: A cadence the fit clipped as an outlier (``SigmaClip``).
QUALITY_SIGMA_CLIP = 4
#: A jump corrected by an additive constant (``JumpAdditiveConstant``).
QUALITY_JUMP_ADDITIVE_CONSTANT = 8
#: A jump corrected by an additive linear trend (``JumpAdditiveLinear``).
QUALITY_JUMP_ADDITIVE_LINEAR = 16
#: A jump corrected by a multiplicative constant (``JumpMultiplicativeConstant``).
QUALITY_JUMP_MULTIPLICATIVE_CONSTANT = 32
#: A jump corrected by a multiplicative linear trend (``JumpMultiplicativeLinear``).
QUALITY_JUMP_MULTIPLICATIVE_LINEAR = 64
#: A cadence interpolated (``Interpolated``).
QUALITY_INTERPOLATED = 128

#: Every jump bit.
QUALITY_JUMPS = (
    QUALITY_JUMP_ADDITIVE_CONSTANT
    | QUALITY_JUMP_ADDITIVE_LINEAR
    | QUALITY_JUMP_MULTIPLICATIVE_CONSTANT
    | QUALITY_JUMP_MULTIPLICATIVE_LINEAR
)
#: The bits the corrections set: cleared before a correction writes its own, so that a
#: correction made again (``-o``) keeps no flag of the earlier one.
QUALITY_CORRECTIONS = QUALITY_SIGMA_CLIP | QUALITY_JUMPS
