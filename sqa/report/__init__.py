"""Self-contained HTML reports with matplotlib figures (the ``report`` extra).

:mod:`sqa.report.figures` turns data into figures, :mod:`sqa.report.html` renders a page,
:mod:`sqa.report.sections` builds the report of each source (rank, challenge, evaluate, run).
"""

from sqa.report.html import Report, Section, check_report_path, render_report, write_report

__all__ = ["Report", "Section", "check_report_path", "render_report", "write_report"]
