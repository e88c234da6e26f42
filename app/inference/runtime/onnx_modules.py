"""ONNX Runtime and OpenVINO sessions as ``torch.nn.Module``: MONAI's inferers call them like the network.

Contract: ``module(x)`` with ``x`` a float32 CPU tensor ``(N, C, *spatial)`` returns the logits as a float32 CPU
tensor ``(N, K, *spatial)``, the same as the torch network in eval mode (up to float rounding; the agreement check
in :mod:`app.inference.runtime.select` measures it). A spatial shape seen for the first time is exported (and
cached, see :mod:`app.inference.runtime.export`) and compiled on first use; sliding windows all share the window
shape, so that happens once.

* ONNX Runtime: one ``InferenceSession`` per spatial shape with a dynamic batch axis; ``intra_op_num_threads``
  from the settings and spinning off, so its idle threads do not steal the cores from the stitching in between.
* OpenVINO: ``f32`` inference precision is forced (on CPUs with bf16 support OpenVINO defaults to bf16, which
  changed this network's logits by 0.2 in our check), ``LATENCY`` hint, ``INFERENCE_NUM_THREADS`` from the
  settings. Models are compiled for a static batch (OpenVINO is fastest on static shapes): a shorter last batch
  is padded with copies of its first window and the padding dropped. The ONNX file is read with
  ``Core.read_model`` (no model conversion tools are called). ``import openvino`` itself sends a usage event
  unless its telemetry is declined first: OpenVINO is imported only through
  :func:`~app.inference.runtime.openvino_import.import_openvino`, which declines it by the switch OpenVINO
  documents, so nothing leaves the machine (``tests/cli/test_no_network.py`` watches a whole run for it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

ExportFn = Callable[[tuple[int, ...]], Path]
"""spatial shape -> ONNX file of the network for inputs of that shape"""


class _OnnxModule(torch.nn.Module):
    """Shared part: per-shape compiled models, tensor <-> numpy at the boundary."""

    def __init__(self, export: ExportFn, num_threads: int) -> None:
        super().__init__()
        self.export = export
        self.num_threads = num_threads
        self._compiled: dict[tuple[int, ...], object] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        key = tuple(array.shape[1:])
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(self.export(key[1:]), array.shape)
        return torch.from_numpy(self._run(compiled, array))

    def _compile(self, onnx_file: Path, shape: tuple[int, ...]) -> object:
        raise NotImplementedError

    def _run(self, compiled: object, array: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class OnnxRuntimeModule(_OnnxModule):
    """The network run by ONNX Runtime's CPU execution provider."""

    def _compile(self, onnx_file: Path, shape: tuple[int, ...]) -> object:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        logger.debug("ONNX Runtime session for %s (%d threads)", onnx_file.name, self.num_threads)
        return ort.InferenceSession(str(onnx_file), sess_options=options, providers=["CPUExecutionProvider"])

    def _run(self, compiled: object, array: np.ndarray) -> np.ndarray:
        return compiled.run(None, {"image": array})[0]  # type: ignore[attr-defined]


class OpenVINOModule(_OnnxModule):
    """The network run by OpenVINO's CPU plugin, compiled for a static batch of ``batch_size`` windows."""

    def __init__(self, export: ExportFn, num_threads: int, batch_size: int, cache_dir: Path | None = None):
        super().__init__(export, num_threads)
        self.batch_size = max(1, int(batch_size))
        self.cache_dir = cache_dir

    def _compile(self, onnx_file: Path, shape: tuple[int, ...]) -> object:
        from app.inference.runtime.openvino_import import import_openvino

        ov = import_openvino()
        core = ov.Core()
        model = core.read_model(str(onnx_file))
        model.reshape({0: [self.batch_size, *shape[1:]]})
        config = {
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": str(self.num_threads),
        }
        if self.cache_dir is not None:
            config["CACHE_DIR"] = str(self.cache_dir)
        logger.debug(
            "OpenVINO model for %s, batch %d (%d threads)", onnx_file.name, self.batch_size, self.num_threads
        )
        return core.compile_model(model, "CPU", config)

    def _run(self, compiled: object, array: np.ndarray) -> np.ndarray:
        count = array.shape[0]
        outputs = []
        for start in range(0, count, self.batch_size):
            chunk = array[start : start + self.batch_size]
            short = self.batch_size - chunk.shape[0]
            if short:
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], short, axis=0)])
            result = compiled(chunk)[0]  # type: ignore[operator]
            outputs.append(np.asarray(result)[: self.batch_size - short])
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
