"""Truth-based scores of the stages' output on simulated data."""
