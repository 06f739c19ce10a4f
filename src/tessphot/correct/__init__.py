"""Systematics corrections of the light curves (``tessphot correct``): ``FLUX_CORR``."""
