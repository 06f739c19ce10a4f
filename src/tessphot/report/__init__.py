"""The precision report of a run and the per-star data validation (``DATAVAL``).

Works on real data: reads ``todo.sqlite`` and the light curves, never a simulation's truth.
"""

from tessphot.report.validation import DataVal, dataval_flags
from tessphot.report.write import Report, write_report, write_report_or_warn

__all__ = ["DataVal", "Report", "dataval_flags", "write_report", "write_report_or_warn"]
