"""The simulator: calibrated FFIs of a sector, camera and CCD with their truth file."""
