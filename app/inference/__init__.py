"""inference stage: image Volume -> label Volume through a MONAI bundle's own pipeline.

Public API::

    load_bundle(path, InferenceOptions(device=..., backend=...)) -> LoadedBundle            (once per batch)
    segment(bundle, volume, workdir, *, name="case") -> Volume                               (once per case)
    read_bundle_info(path) -> BundleInfo                                                     (metadata only)

Modules: ``bundle`` (validation, ConfigParser, weights, labels), ``predict`` (one SupervisedEvaluator run per
case via a temporary RAS NIfTI; labels back on the input grid and space), ``capture`` (the Ignite handler that
replaces ``SaveImaged``). Importing this package does not import torch or MONAI.
"""

from app.inference.bundle import LoadedBundle, load_bundle
from app.inference.bundle_info import BundleInfo, read_bundle_info
from app.inference.options import InferenceOptions
from app.inference.predict import segment

__all__ = ["BundleInfo", "InferenceOptions", "LoadedBundle", "load_bundle", "read_bundle_info", "segment"]
