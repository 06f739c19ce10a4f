"""Version of the tessphot package (written into every output file as PROCVER)."""

__version__ = "0.1.0"
PIPELINE_NAME = "tessphot"
