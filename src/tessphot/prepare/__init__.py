"""The prepare stage: whole FFIs into one HDF5 file per CCD (see :mod:`tessphot.prepare.run`)."""
