"""reporting stage: metrics.csv, summary.json and a self-contained report.html from evaluation results.

Public API: :func:`write_reports`, :class:`CaseVolumes`, :class:`ReportPaths`, :func:`build_provenance`.
Importing this package imports matplotlib (for the pictures); import it lazily in command-line code.
"""

from app.reporting.provenance import build_provenance
from app.reporting.report import CaseVolumes, ReportPaths, write_reports

__all__ = ["CaseVolumes", "ReportPaths", "build_provenance", "write_reports"]
