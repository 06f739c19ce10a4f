"""tessphot: light curves of every star in TESS full-frame images."""

from tessphot.version import PIPELINE_NAME, __version__

__all__ = ["PIPELINE_NAME", "__version__"]
