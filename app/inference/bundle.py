"""A MONAI bundle folder -> the parts that run inference, validated and instantiated once.

Contract of the folder (validated at the door; every failure is a :class:`~app.errors.BundleError` naming the
file and what to fix):

* ``configs/metadata.json``: read by :func:`app.inference.bundle_info.read_bundle_info` (:class:`BundleInfo`).
* ``configs/inference.json``: read with MONAI's :class:`~monai.bundle.ConfigParser`. The keys used are those
  of MONAI's ``InferProperties``: ``bundle_root``, ``device``, ``network_def`` (or ``network``),
  ``preprocessing``, ``inferer``, ``postprocessing``, ``handlers`` (optional), ``evaluator`` (optional, only
  its ``amp``/``non_blocking``/``prepare_batch`` settings are taken) and ``initialize`` (optional, run once,
  as ``python -m monai.bundle run`` does). ``overlap``/``sw_batch_size`` are overridden by key name: the
  top-level key when the config has one (it then feeds the inferer through ``@`` references), else
  ``inferer#overlap``/``inferer#sw_batch_size``.
* ``models/model.pt``: a state dict (or ``{"model": state_dict}``, as MONAI's ``CheckpointSaver`` writes),
  loaded once with ``torch.load(..., weights_only=True)`` and strictly into the network.

Two things of the bundle are changed, both by type, never by list index: ``SaveImaged`` is removed from the
postprocessing (the app writes its own outputs) and ``CheckpointLoader`` is removed from the handlers (the
weights are already loaded, once for the whole batch). The handlers' own loggers (``StatsHandler``'s, which
MONAI gives a stdout handler of its own) lose their console handlers and propagate: the application decides
where the engine's logs go (a batch: its run log only, :mod:`app.batch.run_log`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from monai.inferers import Inferer
    from monai.transforms import Transform

    from app.inference.runtime.select import RuntimeSettings

from app.errors import BundleError
from app.inference.bundle_info import BundleInfo, read_bundle_info
from app.inference.device import resolve_device
from app.inference.options import InferenceOptions
from app.inference.resample_precision import resample_in_float32

logger = logging.getLogger(__name__)

#: inference.json keys that must exist
REQUIRED_KEYS = ("preprocessing", "inferer", "postprocessing")
#: settings of the bundle's ``evaluator`` passed on to the per-case evaluator
EVALUATOR_SETTINGS = ("amp", "non_blocking", "prepare_batch")


@dataclass(frozen=True)
class LoadedBundle:
    """A bundle ready to run: the instantiated parts, built once and shared by every case.

    Attributes:
        info: the metadata summary.
        device: the ``torch.device`` everything runs on.
        network: the network with the weights loaded (eval mode is set by the evaluator).
        preprocessing, inferer, postprocessing: the bundle's own objects (``SaveImaged`` removed).
        handlers: the bundle's handlers minus ``CheckpointLoader``.
        evaluator_settings: keyword arguments for :class:`monai.engines.SupervisedEvaluator` taken from the
            bundle's ``evaluator`` (see :data:`EVALUATOR_SETTINGS`).
        runtime: the backend that runs ``network`` and its settings
            (:class:`~app.inference.runtime.RuntimeSettings`).
    """

    info: BundleInfo
    device: torch.device
    network: torch.nn.Module
    preprocessing: Transform
    inferer: Inferer
    postprocessing: Transform | None
    handlers: tuple[Any, ...]
    evaluator_settings: Mapping[str, Any]
    runtime: RuntimeSettings | None = None


def load_bundle(path: str | Path, options: InferenceOptions | None = None) -> LoadedBundle:
    """Validate, parse and instantiate a bundle once, and load its weights once.

    Args:
        path: the bundle folder.
        options: how to load and run it (:class:`~app.inference.options.InferenceOptions`, checked when it was
            built); ``None``: the bundle as it is, on CUDA when available. A sliding-window inferer is always
            wrapped in :class:`~app.engines.inferers.window_progress.WindowProgress` (silent until
            :func:`app.inference.predict.segment` is given a progress listener).

    Raises:
        BundleError: a missing file or key, a config that cannot be instantiated, or weights that do not load.
        InputError: CUDA asked for but not available.
    """
    from monai.bundle import ConfigParser

    options = options if options is not None else InferenceOptions()
    info = read_bundle_info(path)
    torch_device = resolve_device(options.device)

    parser = ConfigParser()
    try:
        parser.read_config(str(info.config_file))
        parser.read_meta(str(info.metadata_file))
    except (OSError, ValueError) as exc:
        raise BundleError(info.config_file, f"cannot be read: {exc}") from exc
    for key in REQUIRED_KEYS:
        if key not in parser:
            raise BundleError(info.config_file, f"has no {key!r} key (MONAI InferProperties)")
    if "network_def" not in parser and "network" not in parser:
        raise BundleError(info.config_file, "has neither 'network_def' nor 'network'")
    parser["bundle_root"] = str(info.path)
    parser["device"] = f"$torch.device({str(torch_device)!r})"
    _override(parser, "overlap", options.overlap, info.config_file)
    _override(parser, "sw_batch_size", options.sw_batch_size, info.config_file)
    parser.parse(reset=True)

    try:
        if "initialize" in parser:
            parser.get_parsed_content("initialize")
        network = (
            parser.get_parsed_content("network")
            if "network" in parser
            else parser.get_parsed_content("network_def").to(torch_device)
        )
        preprocessing = parser.get_parsed_content("preprocessing")
        inferer = parser.get_parsed_content("inferer")
        postprocessing = _without_save(parser.get_parsed_content("postprocessing"))
        handlers = _without_checkpoint_loader(parser.get_parsed_content("handlers", default=[]))
        _log_through_hierarchy(handlers)
        settings = {
            key: parser.get_parsed_content(f"evaluator#{key}")
            for key in EVALUATOR_SETTINGS
            if f"evaluator#{key}" in parser
        }
    except (KeyError, ValueError, TypeError, AttributeError, ImportError, RuntimeError) as exc:
        # ConfigParser raises these for unresolved references, bad _target_s and failing expressions.
        raise BundleError(info.config_file, f"cannot be instantiated: {type(exc).__name__}: {exc}") from exc

    lowered = resample_in_float32(preprocessing) if options.resample_float32 else 0
    _load_weights(network, info.weights_file, torch_device)
    network.eval()
    network, inferer, runtime = _runtime(info, parser, network, inferer, torch_device, options)
    runtime = replace(runtime, resample_dtype="float32" if lowered else "bundle")
    logger.info(
        "loaded bundle %s %s from %s on %s, backend %s (weights sha256 %s...)",
        info.name,
        info.version,
        info.path,
        torch_device,
        runtime.backend,
        info.weights_sha256[:12],
    )
    return LoadedBundle(
        info=info,
        device=torch_device,
        network=network,
        preprocessing=preprocessing,
        inferer=inferer,
        postprocessing=postprocessing,
        handlers=tuple(handlers),
        evaluator_settings=settings,
        runtime=runtime,
    )


def _runtime(
    info: BundleInfo,
    parser: Any,
    network: Any,
    inferer: Any,
    device: Any,
    options: InferenceOptions,
) -> tuple[Any, Any, Any]:
    """The network on its backend and the inferer that drives it (see :func:`load_bundle`)."""
    from monai.inferers import SlidingWindowInferer
    from monai.utils import ensure_tuple_rep

    from app.engines.inferers.inferer_wrapper import find_inferer, wrap_found
    from app.engines.inferers.skip_empty import SkipEmptyWindows
    from app.engines.inferers.window_progress import WindowProgress, inference_passes
    from app.inference.runtime import wrap_network

    backend = options.backend
    sliding = find_inferer(inferer, SlidingWindowInferer)
    if sliding is None and backend not in ("torch", "auto"):
        raise BundleError(
            info.config_file, f"backend {backend} needs a SlidingWindowInferer (fixed window shape)"
        )
    if sliding is None:
        backend = "torch"
    window = (
        [int(s) for s in ensure_tuple_rep(sliding.roi_size, info.spatial_dims)] if sliding is not None else []
    )
    module, runtime = wrap_network(
        network,
        backend=backend,
        device=device,
        in_channels=_in_channels(parser),
        window=window,
        weights_sha256=info.weights_sha256,
        bundle_path=info.path,
        sw_batch_size=options.sw_batch_size,
        num_threads=options.num_threads,
        where=info.config_file,
    )
    if sliding is not None:
        if options.sw_batch_size is None and runtime.backend != "torch":
            sliding.sw_batch_size = runtime.sw_batch_size
        runtime = replace(runtime, sw_batch_size=int(sliding.sw_batch_size))
    if sliding is not None:
        passes = inference_passes(inferer)
        inferer = wrap_found(inferer, SlidingWindowInferer, lambda found: WindowProgress(found, passes))
    if options.skip_empty and sliding is not None and info.spatial_dims == 3:
        inferer = SkipEmptyWindows(inferer)
    return module, inferer, runtime


def _in_channels(parser: Any) -> int:
    """``network_def#in_channels`` (1 when the config does not say)."""
    key = "network_def#in_channels"
    return int(parser.get_parsed_content(key)) if key in parser else 1


def _override(parser: Any, key: str, value: Any, config_file: Path) -> None:
    """Set ``key`` (top level) or ``inferer#key``, whichever the config has."""
    if value is None:
        return
    for candidate in (key, f"inferer#{key}"):
        if candidate in parser:
            parser[candidate] = value
            logger.info("bundle override %s = %r", candidate, value)
            return
    raise BundleError(config_file, f"has neither {key!r} nor 'inferer#{key}' to override")


def _without_save(postprocessing: Any) -> Any:
    """The postprocessing ``Compose`` without ``SaveImaged``/``SaveImage`` transforms."""
    from monai.transforms import Compose, SaveImage, SaveImaged

    transforms = list(getattr(postprocessing, "transforms", None) or [postprocessing])
    kept = [t for t in transforms if not isinstance(t, (SaveImaged, SaveImage))]
    if len(kept) != len(transforms):
        logger.debug(
            "removed %d save transform(s) from the bundle postprocessing", len(transforms) - len(kept)
        )
    if isinstance(postprocessing, Compose):
        return Compose(
            kept,
            map_items=postprocessing.map_items,
            unpack_items=postprocessing.unpack_items,
            log_stats=postprocessing.log_stats,
            lazy=postprocessing.lazy,
            overrides=postprocessing.overrides,
        )
    return Compose(kept)


def _without_checkpoint_loader(handlers: Any) -> list[Any]:
    from monai.handlers import CheckpointLoader

    return [h for h in (handlers or []) if not isinstance(h, CheckpointLoader)]


def _log_through_hierarchy(handlers: list[Any]) -> None:
    """Remove the console handlers a bundle handler's logger brought along and let its records propagate.

    MONAI's ``StatsHandler`` takes its logger from ``monai.apps.get_logger``, which adds a stdout handler and
    stops propagation: a failing case would print its traceback on the console whatever the application set up.
    """
    for handler in handlers:
        own = getattr(handler, "logger", None)
        if not isinstance(own, logging.Logger) or own is logging.getLogger():
            continue
        for console in [h for h in own.handlers if type(h) is logging.StreamHandler]:
            own.removeHandler(console)
        own.propagate = True


def _load_weights(network: Any, weights: Path, device: Any) -> None:
    import pickle

    import torch

    try:
        checkpoint = torch.load(weights, map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise BundleError(
            weights, f"cannot be loaded as weights (truncated, or not a state dict?): {exc}"
        ) from exc
    if not isinstance(checkpoint, Mapping):
        raise BundleError(weights, f"holds a {type(checkpoint).__name__}, expected a state dict")
    expected = network.state_dict().keys()
    if not set(expected) & set(checkpoint) and isinstance(checkpoint.get("model"), Mapping):
        checkpoint = checkpoint["model"]  # MONAI CheckpointSaver layout {"model": state_dict}
    try:
        network.load_state_dict(checkpoint, strict=True)
    except RuntimeError as exc:
        raise BundleError(weights, f"does not fit the bundle's network_def: {exc}") from exc
