"""Which runtime runs the network, with which settings, and the check that it agrees with torch.

Contract of :func:`wrap_network`:

* ``backend`` is ``"torch"``, ``"onnxruntime"``, ``"openvino"`` or ``"auto"``. ``"auto"`` takes the first of
  :data:`PREFERENCE` (fastest first, from ``scripts/bench_infer.py`` on this project's machine) that is
  installed and passes the agreement check; torch is always the last resort. The ONNX runtimes are CPU
  runtimes: on a CUDA device ``"auto"`` means torch and naming another backend is refused.
* the agreement check runs the torch network and the candidate on one deterministic window (seeded normal noise
  of the window shape) and accepts when the largest logit difference is at most ``AGREEMENT_ATOL`` plus
  ``AGREEMENT_RTOL`` times the largest torch logit. A backend named explicitly that fails it raises
  :class:`~app.errors.BundleError`; under ``"auto"`` the next backend is tried (with a warning).
* :class:`RuntimeSettings` of the chosen backend carry its window batch size and thread count, measured, not
  guessed (``scripts/bench_infer.py``); the caller's ``sw_batch_size`` wins when given.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from app.errors import BundleError

logger = logging.getLogger(__name__)

BackendChoice = Literal["auto", "torch", "onnxruntime", "openvino"]
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "openvino")
#: what a user may ask for (``--backend``); this module imports neither torch nor the runtimes
BACKEND_CHOICES: tuple[str, ...] = ("auto", *BACKENDS)
#: fastest first (scripts/bench_infer.py); torch last, always available
PREFERENCE: tuple[str, ...] = ("openvino", "onnxruntime", "torch")
#: window batch size per backend (scripts/bench_infer.py, 40x56x40 windows on 2 cores, s per window at batch
#: 1/2/4 over two runs: torch 0.16-0.19/0.105-0.119/0.115-0.117, onnxruntime 0.10-0.12/0.102/0.104-0.106,
#: openvino 0.054/0.053/0.053: OpenVINO gains nothing from batching, so batch 1 spares it the padding of short
#: last batches). Under backend "torch" the bundle's own sw_batch_size is kept unless the caller gives one.
SW_BATCH_SIZE: dict[str, int] = {"torch": 2, "onnxruntime": 2, "openvino": 1}
AGREEMENT_ATOL = 1e-3
AGREEMENT_RTOL = 1e-3

_MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


@dataclass(frozen=True)
class RuntimeSettings:
    """The backend that runs the network and how.

    Attributes:
        backend: ``"torch"``, ``"onnxruntime"`` or ``"openvino"``.
        sw_batch_size: windows per network call.
        num_threads: threads of the runtime (and of torch, which does the stitching).
        max_abs_logit_diff: the agreement check's largest logit difference to torch (0 for torch itself).
        resample_dtype: ``"float32"`` when the bundle's float64 resampling was lowered
            (:mod:`app.inference.resample_precision`), ``"bundle"`` when it runs as the bundle says.
    """

    backend: str
    sw_batch_size: int
    num_threads: int
    max_abs_logit_diff: float = 0.0
    resample_dtype: str = "bundle"


def available_backends() -> tuple[str, ...]:
    """Installed backends, fastest first."""
    return tuple(b for b in PREFERENCE if b == "torch" or importlib.util.find_spec(_MODULES[b]) is not None)


def default_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def wrap_network(
    network: Any,
    *,
    backend: BackendChoice | str,
    device: Any,
    in_channels: int,
    window: Sequence[int],
    weights_sha256: str,
    bundle_path: Path,
    sw_batch_size: int | None = None,
    num_threads: int | None = None,
    where: Path | None = None,
) -> tuple[Any, RuntimeSettings]:
    """The module that runs ``network`` on ``backend`` (contract in the module docstring), and its settings.

    Args:
        network: the torch network with its weights, on ``device``.
        backend: see :data:`BackendChoice`.
        device: the torch device of the bundle.
        in_channels: input channels of the network.
        window: the sliding window's spatial shape (exported once at this shape).
        weights_sha256: hash of the weights (the export cache key).
        bundle_path: the bundle folder (logged with the export cache,
            :func:`~app.inference.runtime.export.cache_dir`: the user cache, created only when an ONNX runtime is
            tried).
        sw_batch_size: windows per call; ``None``: the backend's measured best.
        num_threads: runtime threads; ``None``: every CPU this process may use.
        where: the file named in errors (the bundle's inference.json).
    """
    import torch

    threads = num_threads or default_threads()
    torch.set_num_threads(threads)
    choice = str(backend).lower()
    if choice not in BACKEND_CHOICES:
        raise BundleError(where, f"unknown backend {backend!r}; expected auto, {', '.join(BACKENDS)}")
    on_cpu = torch.device(device).type == "cpu"
    if choice == "auto":
        candidates = [b for b in available_backends() if on_cpu or b == "torch"]
    else:
        if choice != "torch" and not on_cpu:
            raise BundleError(
                where, f"backend {choice} runs on the CPU only; use --device cpu or --backend torch"
            )
        if choice not in available_backends():
            raise BundleError(where, f"backend {choice} is not installed (pip install {_MODULES[choice]})")
        candidates = [choice]
    for name in candidates:
        batch = sw_batch_size or SW_BATCH_SIZE[name]
        if name == "torch":
            return network, RuntimeSettings("torch", batch, threads)
        module = _onnx_module(name, network, in_channels, weights_sha256, bundle_path, threads, batch)
        difference = _max_logit_difference(network, module, in_channels, window)
        if difference is not None:
            logger.info("backend %s agrees with torch: max |logit difference| %.2e", name, difference)
            return module, RuntimeSettings(name, batch, threads, difference)
        if choice != "auto":
            raise BundleError(
                where, f"backend {name} disagrees with torch on the check window; use --backend torch"
            )
        logger.warning("backend %s disagrees with torch on the check window; trying the next one", name)
    raise AssertionError("torch is always a candidate")  # pragma: no cover


def _onnx_module(
    name: str, network: Any, in_channels: int, sha: str, bundle_path: Path, threads: int, batch: int
) -> Any:
    from app.inference.runtime.export import cache_dir, onnx_export
    from app.inference.runtime.onnx_modules import OnnxRuntimeModule, OpenVINOModule

    folder = cache_dir(bundle_path)

    def export(spatial_shape: tuple[int, ...]) -> Path:
        return onnx_export(
            network, folder=folder, weights_sha256=sha, in_channels=in_channels, spatial_shape=spatial_shape
        )

    if name == "onnxruntime":
        return OnnxRuntimeModule(export, threads)
    return OpenVINOModule(export, threads, batch, cache_dir=folder / "openvino")


def _max_logit_difference(network: Any, module: Any, in_channels: int, window: Sequence[int]) -> float | None:
    """Largest |logit difference| on the check window, or ``None`` when beyond the tolerance."""
    import torch

    generator = torch.Generator().manual_seed(0)
    x = torch.randn((1, in_channels, *window), generator=generator)
    was_training = network.training
    network.eval()
    with torch.no_grad():
        expected = network(x)
        got = module(x)
    network.train(was_training)
    difference = float((expected - got).abs().max())
    limit = AGREEMENT_ATOL + AGREEMENT_RTOL * float(expected.abs().max())
    return difference if difference <= limit else None


__all__ = ["BACKENDS", "PREFERENCE", "RuntimeSettings", "available_backends", "wrap_network"]
