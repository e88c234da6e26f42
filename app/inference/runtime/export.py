"""A bundle's network -> an ONNX file, exported once and cached in the user cache, keyed by the weights' hash.

Contract of :func:`onnx_export`:

* the file name holds the first 16 hex digits of the weights' SHA-256, the input channels and spatial shape,
  the opset and the torch version, so new weights, a new window size or a new exporter never reuse a stale file;
  the batch axis is dynamic.
* the cache folder (:func:`cache_dir`) is ``$UNETSEG_CACHE_DIR/exports``, else
  ``$XDG_CACHE_HOME/unetseg/exports`` or ``~/.cache/unetseg/exports``: never the source tree or an installed
  bundle unless asked (``UNETSEG_CACHE_DIR=<bundle>/models`` keeps them beside the weights).
* the file is written to a temporary name and renamed, so a crash or a concurrent run never leaves a half file.
* the network must be on the CPU (the ONNX runtimes here are CPU runtimes); it is exported in eval mode (dropout off), with the legacy TorchScript tracer: BasicUNet's shape
  checks are Python conditionals that tracing resolves for the one spatial shape, which is why the shape is
  part of the key.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: ONNX opset of the exports (supported by ONNX Runtime >= 1.12 and OpenVINO >= 2022)
OPSET = 17


def cache_dir(bundle_path: Path) -> Path:
    """The export cache folder, created: ``$UNETSEG_CACHE_DIR/exports`` when that variable is set, else
    ``$XDG_CACHE_HOME/unetseg/exports`` or ``~/.cache/unetseg/exports``.

    The user cache is the default so that a run never writes a 44 MB file into a source checkout or an installed
    bundle; ``UNETSEG_CACHE_DIR=<bundle>/models`` asks for the exports beside the weights. ``bundle_path`` is
    kept for the log line (which bundle the cache serves); file names carry the weights' hash, so bundles
    share one cache folder safely.
    """
    root = os.environ.get("UNETSEG_CACHE_DIR")
    if root:
        folder = Path(root).expanduser() / "exports"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        folder = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "unetseg" / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    logger.debug("ONNX export cache for %s: %s", bundle_path, folder)
    return folder


def export_name(weights_sha256: str, in_channels: int, spatial_shape: Sequence[int]) -> str:
    import torch

    shape = "x".join(str(int(s)) for s in spatial_shape)
    version = torch.__version__.split("+")[0]
    return f"model-{weights_sha256[:16]}-c{in_channels}-{shape}-opset{OPSET}-torch{version}.onnx"


def onnx_export(
    network: Any, *, folder: Path, weights_sha256: str, in_channels: int, spatial_shape: Sequence[int]
) -> Path:
    """The cached ONNX file of ``network`` for inputs ``(N, in_channels, *spatial_shape)``; exported if missing."""
    import torch

    target = Path(folder) / export_name(weights_sha256, in_channels, spatial_shape)
    if target.is_file():
        logger.debug("ONNX export cache hit: %s", target)
        return target
    example = torch.zeros((1, in_channels, *spatial_shape), dtype=torch.float32)
    was_training = network.training
    network.eval()
    handle, temp_name = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=target.parent)
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation warnings of the legacy exporter
            torch.onnx.export(
                network,
                (example,),
                temp_name,
                input_names=["image"],
                output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        os.replace(temp_name, target)
    finally:
        Path(temp_name).unlink(missing_ok=True)
        network.train(was_training)
    logger.info("exported the network to %s", target)
    return target
