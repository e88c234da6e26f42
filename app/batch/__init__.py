"""batch stage: many inputs -> one model load -> per-case outputs -> the run report.

Public API::

    run_batch(BatchConfig(inputs=..., bundle=..., out=...)) -> BatchResult

Modules: ``config`` (:class:`BatchConfig`), ``records`` (per-case record), ``case`` (one case: load, segment,
write), ``manifest`` (``case.json`` and the ``--resume`` completeness rule), ``report`` (``report.json`` /
``report.csv``), ``scoring`` (``--ref``: the evaluation stage on this run's outputs), ``runner`` (the loop and
the one per-case error boundary). Importing this package does not import torch or MONAI.
"""

from app.batch.config import BatchConfig, parse_formats
from app.batch.runner import BatchResult, run_batch

__all__ = ["BatchConfig", "BatchResult", "parse_formats", "run_batch"]
