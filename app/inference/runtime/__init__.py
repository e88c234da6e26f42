"""Inference runtimes for a bundle's network: torch eager, ONNX Runtime and OpenVINO, behind one torch module.

Modules: ``export`` (the network -> a cached ONNX file keyed by the weights' hash), ``onnx_modules`` (ONNX Runtime
and OpenVINO sessions wrapped as ``torch.nn.Module`` so that MONAI's inferers and evaluators call them like the
network), ``select`` (which backend, its thread and window-batch settings, and the agreement check against torch).
"""

from app.inference.runtime.select import (
    BACKENDS,
    BackendChoice,
    RuntimeSettings,
    available_backends,
    wrap_network,
)

__all__ = ["BACKENDS", "BackendChoice", "RuntimeSettings", "available_backends", "wrap_network"]
