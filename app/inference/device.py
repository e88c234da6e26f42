"""Which torch device a run uses: ``--device auto|cpu|cuda[:N]`` resolved once, with a clear error."""

from __future__ import annotations

from typing import Any, Literal

from app.errors import InputError

DeviceChoice = Literal["auto", "cpu", "cuda"]


def resolve_device(choice: str) -> Any:
    """``"auto"`` -> CUDA if available else CPU; other names as torch devices.

    Raises:
        InputError: an unknown device name, or CUDA asked for but not available.
    """
    import torch

    choice = str(choice).strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(choice)
    except RuntimeError as exc:
        raise InputError(None, f"unknown device {choice!r}; expected auto, cpu or cuda[:N]") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            None, "device cuda asked for, but torch sees no CUDA device; use --device cpu or auto"
        )
    return device
