"""How a bundle is loaded and run: :class:`InferenceOptions`, one typed object from the door to :func:`load_bundle`.

Contract: the options are checked once, when the object is built, and a bad value raises
:class:`~app.errors.InputError` naming the option; :func:`app.inference.bundle.load_bundle` takes the object and
checks nothing of it again (whether a CUDA device is present is a fact of the machine, found at load). The
defaults are the bundle as it is (torch, every window, the bundle's resampling precision); ``unetseg infer``'s
own defaults are :class:`~app.batch.config.BatchConfig`'s, which builds this object from its fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.errors import InputError
from app.inference.runtime.select import BACKEND_CHOICES

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


@dataclass(frozen=True)
class InferenceOptions:
    """How to load and run a bundle.

    Attributes:
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        overlap: sliding-window overlap in [0, 1) instead of the bundle's; ``None``: the bundle's.
        sw_batch_size: sliding-window batch size (>= 1) instead of the bundle's; with a ``backend`` other than
            ``"torch"`` and none given, the backend's measured best (:mod:`app.inference.runtime.select`).
        backend: ``"torch"`` (the bundle as it is), ``"onnxruntime"``, ``"openvino"`` or ``"auto"`` (see
            :func:`app.inference.runtime.wrap_network`); the ONNX runtimes need a sliding-window inferer.
        skip_empty: wrap a 3D bundle's sliding-window inferer in
            :class:`~app.engines.inferers.skip_empty.SkipEmptyWindows` (windows outside the body skip the network).
        num_threads: CPU threads of the runtime (>= 1); ``None``: every CPU this process may use.
        resample_float32: resample in float32 where the bundle's ``Spacing(d)`` says float64 (MONAI's default),
            halving the largest transient allocations of a case (:mod:`app.inference.resample_precision`).
    """

    device: str = "auto"
    overlap: float | None = None
    sw_batch_size: int | None = None
    backend: str = "torch"
    skip_empty: bool = False
    num_threads: int | None = None
    resample_float32: bool = False

    def __post_init__(self) -> None:
        device = str(self.device).strip().lower()
        if not _DEVICE.match(device):
            raise InputError(None, f"unknown device {self.device!r}; expected auto, cpu or cuda[:N]")
        object.__setattr__(self, "device", device)
        if self.overlap is not None and not 0 <= self.overlap < 1:
            raise InputError(None, f"overlap must be in [0, 1), got {self.overlap}")
        if self.sw_batch_size is not None and self.sw_batch_size < 1:
            raise InputError(None, f"sw batch size must be >= 1, got {self.sw_batch_size}")
        if self.backend not in BACKEND_CHOICES:
            raise InputError(
                None, f"backend must be one of {', '.join(BACKEND_CHOICES)}, got {self.backend!r}"
            )
        if self.num_threads is not None and self.num_threads < 1:
            raise InputError(None, f"threads must be >= 1, got {self.num_threads}")
