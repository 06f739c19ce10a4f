"""Evaluation against a known truth: the simulator and every truth-based scorer.

:mod:`tessphot.evaluation.simulate` writes simulated FFIs with their truth file;
:mod:`tessphot.evaluation.scoring` scores what the stages made of them (the prepared data,
the light curves). This package may import every stage; no stage imports it.
"""
