"""MONAI Label tasks that run this project's bundles: inference from ``inference.json``, training from ``train.json``.

Both tasks get the *served copy* of a bundle (see :mod:`app.label_server.bundles`) as ``path`` and override the
config id ``bundle_root`` with it, so every path the configs build from ``@bundle_root`` (``models/model.pt``,
``ckpt_dir``, ``output_dir``) points into the copy, never into the repository.

Inference, :class:`UnetsegBundleInferTask`, follows MONAI Label's ``BundleInferTask`` (0.8.5,
``monailabel/tasks/infer/bundle.py``) but is written on its base class ``BasicInferTask``: that module imports
``monailabel.transform.post``, which imports torchvision at import time, and no torchvision wheel works with the
CPU build of torch 2.13 (``operator torchvision::nms does not exist``). It reads the same config ids:
``bundle_root``, ``device``, ``network_def``, ``preprocessing`` (``LoadImaged`` wrapped by MONAI Label's
``LoadImageTensord``, as upstream), ``inferer``, ``postprocessing`` (``SaveImaged`` dropped: MONAI Label writes
the ``pred`` key itself) and ``displayable_configs``; labels come from ``metadata.json``'s ``channel_def``.
Unlike upstream it does not append MONAI Label's ``Restored``: the bundle's postprocessing must bring ``pred``
back onto the input grid itself (ours use ``Invertd``), which is also what ``python -m monai.bundle run``
writes. The label MONAI Label writes has the values and dtype the bundle's ``SaveImaged`` would write (its
``scale`` and ``output_dtype``), and ``/info`` lists each label with that value: the 2D EM bundle returns a
``uint8`` PNG with membrane 0 and cell 255, the 3D hippocampus bundle ``uint8`` class indices in NIfTI. Weights:
``<copy>/models/model.pt``, loaded strictly, reloaded by MONAI Label when the file's modification time changes
(so a training run's new ``model.pt`` is served at the next request).

Training, :class:`UnetsegBundleTrainTask`, is MONAI Label's ``BundleTrainTask`` (which imports no torchvision).
It overrides ``bundle_root``, ``device``, ``train#trainer#max_epochs`` (and the root ``max_epochs``, which the
learning-rate schedule reads), ``train#dataset#data`` and ``validate#dataset#data`` (the datastore's labelled
images split by the request's ``val_split``; this bypasses ``train_datalist`` and ``configs/datalist.json``) and
``train#handlers`` (a ``CheckpointLoader`` of the current ``model.pt`` first, when ``pretrained``), then runs
the ``run`` id after ``initialize``. It also sets ``network_def`` to ``inference.json``'s and ``ckpt_dir`` to
``<copy>/models``: the server fine-tunes the predictor it serves (for the EM bundle, the ensemble of its five
fold networks, trained as one module), whatever single network ``train.json`` defines and wherever it writes. Added here: strict weight loading, request checks, ``val_interval`` as a
request option (default: the smaller of the bundle's value and ``max_epochs``, so a short run validates, and so
writes ``model.pt``, at least once), only the datastore's labelled images of the bundle's dimension (2D slices or
3D volumes, by file ending), and ``stats()`` with the served weights' SHA-256 for ``/info``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

from monai.bundle import ConfigItem, ConfigParser
from monai.inferers import Inferer, SimpleInferer
from monai.transforms import (
    CastToTyped,
    Compose,
    CopyItemsd,
    DeleteItemsd,
    LoadImaged,
    SaveImaged,
    ScaleIntensityRanged,
    SqueezeDimd,
)
from monailabel.interfaces.tasks.infer_v2 import InferType
from monailabel.tasks.infer.basic_infer import BasicInferTask
from monailabel.tasks.train.bundle import BundleTrainTask
from monailabel.transform.pre import LoadImageTensord
from monailabel.utils.others.generic import strtobool

from app.label_server.bundles import (
    WEIGHTS,
    bundle_dimension,
    image_dimension,
    label_values,
    labels_from_metadata,
    served_weights_stats,
)
from app.label_server.safety import UnsafeNameError, check_train_request

logger = logging.getLogger(__name__)

INFERENCE_CONFIG = "inference.json"

#: where the input path waits while the bundle's transforms run (see ``pre_transforms``)
PARKED_PATH_KEY = "input_path"


class UnetsegBundleInferTask(BasicInferTask):
    """Segmentation inference from a bundle's ``configs/inference.json`` and ``models/model.pt``.

    Args:
        path: the served copy of the bundle (absolute).
        conf: the app's ``--conf`` settings (``preload`` is read).

    ``is_valid()`` is False when the copy has no weights; the app then does not serve the bundle.
    """

    def __init__(self, path: str, conf: dict[str, str]):
        self.bundle_path = os.path.abspath(path)
        configs = os.path.join(self.bundle_path, "configs")
        self.bundle_config = ConfigParser()
        self.bundle_config.read_config(os.path.join(configs, INFERENCE_CONFIG))
        self.bundle_config.config.update({"bundle_root": self.bundle_path})  # type: ignore[union-attr]
        meta_path = os.path.join(configs, "metadata.json")
        with open(meta_path) as fh:
            metadata = json.load(fh)
        self.version = metadata.get("version")

        model_path = os.path.join(self.bundle_path, "models", WEIGHTS)
        network = self.bundle_config.get_parsed_content("network_def", instantiate=True)
        self.key_pred = next(iter(metadata["network_data_format"]["outputs"]))
        self.output_scale, self.output_dtype = self._saved_format()
        labels = label_values(
            labels_from_metadata(metadata, source=meta_path),
            self.output_scale,
            source=os.path.join(configs, INFERENCE_CONFIG),
        )
        super().__init__(
            path=model_path,
            network=network,
            type=InferType.SEGMENTATION,
            labels=labels,
            dimension=bundle_dimension(metadata),
            description=metadata.get("description", ""),
            preload=strtobool(conf.get("preload", "false")),
            load_strict=True,
        )
        self.displayable_configs: dict[str, Any] = {}
        if self.bundle_config.get("displayable_configs"):
            self.displayable_configs = self.bundle_config.get_parsed_content(
                "displayable_configs", instantiate=True
            )
            self._config.update(self.displayable_configs)

        # one request at a time through this bundle's parser: see _parsed (MONAI Label may run requests in threads
        # when MONAI_LABEL_INFER_CONCURRENCY is set)
        self._lock = threading.Lock()

    def is_valid(self) -> bool:
        return os.path.isfile(os.path.join(self.bundle_path, "models", WEIGHTS))

    def _saved_format(self) -> tuple[int | None, Any]:
        """``scale`` and ``output_dtype`` of the bundle's ``SaveImaged`` in ``postprocessing`` (None, None without).

        These set the values and data type of the label the bundle writes (the EM bundle: class 0 as 0, class 1
        as 255, uint8); the server returns its label in the same convention (see ``post_transforms``).
        """
        post = self.bundle_config.get_parsed_content("postprocessing", instantiate=True)
        transforms = list(post.transforms) if isinstance(post, Compose) else list(post or [])
        for t in transforms:
            if isinstance(t, SaveImaged):
                scale: Any = t.saver.init_kwargs.get("scale")
                return (int(scale) if scale else None), t.saver.init_kwargs.get("output_dtype")
        return None, None

    def __call__(self, request, callbacks=None):
        with self._lock:
            return super().__call__(request, callbacks)

    def info(self) -> dict[str, Any]:
        info = super().info()
        info["version"] = self.version
        info["weights"] = served_weights_stats(self.bundle_path)
        return info

    def _parsed(self, key: str, data, *, reparse: bool = False) -> Any:
        """The config item ``key`` instantiated, after the request's ``device`` (and displayable settings).

        Only ``pre_transforms`` re-parses (``reparse=True``), as upstream: the postprocessing ``Invertd`` must get
        the very ``preprocessing`` instance that ran, and a parse makes new instances.
        """
        if reparse and data and self.displayable_configs:
            self.bundle_config["displayable_configs"].update(
                {k: data[k] for k in self.displayable_configs if k in data}
            )
            self.bundle_config.parse()
        device = data.get("device") if data else None
        if device:
            self.bundle_config.config.update({"device": device})  # type: ignore[union-attr]
            if self.bundle_config.ref_resolver.items.get("device"):
                self.bundle_config.ref_resolver.items["device"] = ConfigItem(config=device, id="device")
        return (
            self.bundle_config.get_parsed_content(key, instantiate=True)
            if self.bundle_config.get(key)
            else None
        )

    def pre_transforms(self, data=None) -> list:
        pre = self._parsed("preprocessing", data, reparse=True)
        transforms = list(pre.transforms) if isinstance(pre, Compose) else list(pre or [])
        # MONAI Label puts the input path in data["image_path"]; MONAI 1.6's Spacingd updates every "image_*"
        # entry as a meta dict and fails on that string, so park it under another key until post_transforms
        result: list = [
            CopyItemsd(keys="image_path", names=PARKED_PATH_KEY, allow_missing_keys=True),
            DeleteItemsd(keys="image_path"),
        ]
        for t in transforms:
            if isinstance(t, LoadImaged):
                # as upstream: keep the meta dict, and accept an already loaded array as well as a path
                t._loader.image_only = False
                result.append(LoadImageTensord(keys=t.keys, load_image_d=t))
            else:
                result.append(t)
        return result

    def inferer(self, data=None) -> Inferer:
        inferer = self._parsed("inferer", data)
        return inferer if inferer is not None else SimpleInferer()

    def post_transforms(self, data=None) -> list:
        """The bundle's postprocessing without ``SaveImaged``, then what MONAI Label's writer needs.

        Contract of the ``pred`` handed to MONAI Label's ``Writer``: no channel axis (``(H, W, D)`` for 3D; for
        2D ``(W, H)``, MONAI's ``PILReader`` order, which the writer transposes back), the values and dtype the
        bundle's ``SaveImaged`` writes (its ``scale``: class index clipped to [0, 1] times ``scale``, as MONAI's
        ``PILWriter`` does; its ``output_dtype``; PNG needs an integer type), and the input's affine (3D).
        A client's ``result_dtype`` or ``result_extension`` still takes precedence in the writer.
        """
        post = self._parsed("postprocessing", data)
        transforms = list(post.transforms) if isinstance(post, Compose) else list(post or [])
        result = [t for t in transforms if not isinstance(t, SaveImaged)]
        # MONAI Label's writer wants a label map without the channel axis (upstream's Restored drops it too);
        # the affine stays the one Invertd restored
        result.append(SqueezeDimd(keys=self.key_pred, dim=0))
        if self.output_scale:
            result.append(
                ScaleIntensityRanged(
                    keys=self.key_pred,
                    a_min=0.0,
                    a_max=1.0,
                    b_min=0.0,
                    b_max=float(self.output_scale),
                    clip=True,
                )
            )
        if self.output_dtype is not None:
            result.append(CastToTyped(keys=self.key_pred, dtype=self.output_dtype))
        # and takes the output's extension from data["image_path"]
        result.append(CopyItemsd(keys=PARKED_PATH_KEY, names="image_path", allow_missing_keys=True))
        return result


class UnetsegBundleTrainTask(BundleTrainTask):
    """``BundleTrainTask`` with strict checkpoint loading, request checks and a ``val_interval`` option.

    The bundle's validation ``CheckpointSaver`` writes ``<copy>/models/model.pt`` when the key metric improves
    within the run; with the bundle's ``val_interval`` larger than ``max_epochs`` no validation would run and no
    new weights would be written.
    """

    def __init__(self, path: str, conf: dict[str, str], **kwargs: Any):
        kwargs.setdefault("load_strict", True)
        super().__init__(os.path.abspath(path), conf, **kwargs)
        self._request: dict[str, Any] = {}
        with open(os.path.join(path, "configs", "metadata.json")) as fh:
            self.dimension = bundle_dimension(json.load(fh))

    def _fetch_datalist(self, request, datastore) -> list[dict[str, Any]]:
        """The datastore's labelled images of this bundle's dimension (2D slices or 3D volumes).

        One server serves 2D and 3D bundles from one datastore; MONAI Label would train each on every labelled
        image. Which are 2D is decided by file ending (:func:`app.label_server.bundles.image_dimension`).

        Raises:
            ValueError: no labelled image of this dimension (MONAI Label reports the training as failed).
        """
        datalist = super()._fetch_datalist(request, datastore)
        kept = [d for d in datalist if image_dimension(d["image"]) == self.dimension]
        logger.info(
            "training %s on %d labelled %dD images of the datastore (%d of another dimension left out)",
            self.bundle_path,
            len(kept),
            self.dimension,
            len(datalist) - len(kept),
        )
        if not kept:
            raise ValueError(
                f"no labelled {self.dimension}D image in the datastore for {os.path.basename(self.bundle_path)} "
                f"({len(datalist)} labelled images of another dimension); add labels under labels/final/"
            )
        return kept

    def config(self) -> dict[str, Any]:
        options = super().config()
        options["val_interval"] = int(self.bundle_config.get("val_interval", 1) or 1)
        return options

    def stats(self) -> dict[str, Any]:
        """What ``/info`` shows under ``train_stats``: the served weights' SHA-256, size, time and origin."""
        return served_weights_stats(self.bundle_path)

    def __call__(self, request: dict[str, Any], datastore):
        try:
            check_train_request(request)
        except UnsafeNameError:
            logger.exception("training request refused")
            raise
        request = dict(request)
        if not request.get("run_id"):
            request["run_id"] = "run"  # MONAI Label's /info offers "", which would name no config id
        # kept for _update_overrides; MONAI Label runs each training in its own process, one at a time
        self._request = request
        return super().__call__(request, datastore)

    def _update_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        max_epochs = int(overrides.get(self.const.key_train_trainer_max_epochs(), 1))
        bundle_interval = int(self.bundle_config.get("val_interval", 1) or 1)
        val_interval = max(1, int(self._request.get("val_interval") or min(bundle_interval, max_epochs)))
        overrides["val_interval"] = val_interval
        # the bundles' learning-rate schedule decays to 0 at the root ``max_epochs``: without this a 2-epoch
        # request would train at the start of the 80-epoch schedule and stop there, at the full rate
        overrides["max_epochs"] = max_epochs
        # server-side training fine-tunes the served predictor: inference.json's network (for a bundle that ships
        # an ensemble of fold networks, the ensemble as one module), its model.pt loaded first, and the new
        # weights written where inference reads them
        with open(os.path.join(self.bundle_path, "configs", INFERENCE_CONFIG)) as fh:
            overrides["network_def"] = json.load(fh)["network_def"]
        overrides["ckpt_dir"] = os.path.join(self.bundle_path, "models")
        logger.info("training %s: max_epochs=%d val_interval=%d", self.bundle_path, max_epochs, val_interval)
        return overrides
