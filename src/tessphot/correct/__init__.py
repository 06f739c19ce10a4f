"""The corrections stage: common-mode systematics removed from raw light curves (``FLUX_CORR``).

The numerical core: cotrending basis vectors built from the stars of a CBV area
(:mod:`tessphot.correct.cbv`), their FITS file and plot (:mod:`tessphot.correct.cbv_file`),
and their fit to one star, by least squares or with a prior from its neighbours
(:mod:`tessphot.correct.fit`, :mod:`tessphot.correct.prior`); the ensemble alternative
(:mod:`tessphot.correct.ensemble`). The stage itself (:mod:`tessphot.correct.stage`): the
light curves of each group read together (:mod:`tessphot.correct.lightcurves`), the results
in todo.sqlite (:mod:`tessphot.correct.store`).
"""
