"""The MONAI Label app that serves this project's bundles: ``monailabel start_server --app app/label_server``.

MONAI Label loads this file by path (``<app>/main.py``) and instantiates the one ``MONAILabelApp`` subclass in
it, in the server and again in every training process. Settings come from ``--conf KEY VALUE`` pairs:

``bundles_dir``
    folder holding the bundles (default: the repository's ``bundles/``).
``models``
    ``all`` (default) or comma-separated bundle names; each bundle folder name is its model name.
``model_dir``
    where the served copies of the bundles live and where server-side training writes (default:
    ``<app>/model``, git-ignored). See :mod:`app.label_server.bundles` for the copy rules.
``skip_trainers``
    ``true`` to serve inference only.
``preload``
    ``true`` to load the networks at start-up rather than on the first request.

HTTP requests pass :mod:`app.label_server.guard` first (Host, Origin, and a token for anything but GET; the app
refuses to start without it, see :meth:`UnetsegLabelApp.on_init_complete`). Every inference request's image,
label tag and model file name are checked (:mod:`app.label_server.safety`),
and the local datastore refuses ids and tags that are paths (:mod:`app.label_server.datastore`). 2D and 3D
bundles share the datastore: an image of the other dimension than the model's (by file ending, see
:func:`app.label_server.bundles.image_dimension`) is refused with ``400``, and each trainer trains only on the
labelled images of its dimension.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import monailabel
from fastapi import HTTPException
from monailabel.config import settings
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.infer_v2 import InferTask
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random
from monailabel.utils.others.generic import strtobool

import app
from app.label_server.bundles import (
    SLICE_SUFFIXES,
    BundleSpec,
    discover_bundles,
    image_dimension,
    prepare_served_copy,
)
from app.label_server.datastore import GuardedLocalDatastore, refuse
from app.label_server.guard import guard_active
from app.label_server.safety import UnsafeNameError, check_infer_request
from app.label_server.tasks import UnetsegBundleInferTask, UnetsegBundleTrainTask

logger = logging.getLogger(__name__)

#: the repository's bundles folder, when the package is installed from a checkout (``pip install -e``)
DEFAULT_BUNDLES_DIR = Path(app.__file__).resolve().parents[1] / "bundles"


class UnetsegLabelApp(MONAILabelApp):
    """Serves every bundle under ``bundles_dir`` (or those named in ``models``) for inference and training."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]):
        bundles_dir = Path(conf.get("bundles_dir") or DEFAULT_BUNDLES_DIR)
        names = conf.get("models", "all").strip()
        wanted = None if names in ("", "all") else [n.strip() for n in names.split(",") if n.strip()]
        self.model_dir = Path(conf.get("model_dir") or Path(app_dir) / "model").resolve()
        self.bundles: list[BundleSpec] = discover_bundles(bundles_dir, wanted)
        self.served: dict[str, str] = {
            s.name: str(prepare_served_copy(s, self.model_dir)) for s in self.bundles
        }
        logger.info("bundles from %s served from %s: %s", bundles_dir, self.model_dir, ", ".join(self.served))
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name=f"unetseg bundles (MONAI Label {monailabel.__version__})",
            description="The unetseg project's MONAI bundles: " + ", ".join(self.served),
            version=app.__version__,
        )

    def init_datastore(self) -> Datastore:
        """The local folder datastore with id checks; remote datastores (DICOMweb, XNAT, DSA) as MONAI Label has them."""
        if self.studies.startswith(("http://", "https://")):
            return super().init_datastore()
        logger.info("local datastore: %s", self.studies)
        return GuardedLocalDatastore(
            self.studies,
            extensions=settings.MONAI_LABEL_DATASTORE_FILE_EXT,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def init_infers(self) -> dict[str, InferTask]:
        infers: dict[str, InferTask] = {}
        for name, path in self.served.items():
            task = self._build(name, "inference", UnetsegBundleInferTask, path)
            if task is not None and task.is_valid():
                infers[name] = task
            elif task is not None:
                logger.warning(
                    "bundle %s is not served for inference (no weights or no inference config)", name
                )
        return infers

    def init_trainers(self) -> dict[str, TrainTask]:
        if strtobool(self.conf.get("skip_trainers", "false")):
            return {}
        trainers: dict[str, TrainTask] = {}
        for spec in self.bundles:
            if not spec.trainable:
                continue
            task = self._build(spec.name, "training", UnetsegBundleTrainTask, self.served[spec.name])
            if task is not None and task.is_valid():
                trainers[spec.name] = task
        return trainers

    def init_strategies(self) -> dict[str, Strategy]:
        return {"random": Random(), "first": First()}

    def _build(self, name: str, what: str, task_class, path: str):
        """One task per bundle; a bundle whose config cannot be built is logged and left out, the rest still served."""
        try:
            task = task_class(path, self.conf)
        except Exception:  # noqa: BLE001 - any error in one bundle's config must not stop the others
            logger.exception("bundle %s: cannot set up %s from %s", name, what, path)
            return None
        logger.info("bundle %s: %s task ready from %s", name, what, path)
        return task

    def on_init_complete(self):
        """Refuse to serve HTTP without the request guard (:mod:`app.label_server.guard`): started as
        ``monailabel start_server --app app/label_server`` alone, MONAI Label would answer every web page and let
        anyone train, upload and delete. Called only in the server, not in training processes."""
        if not guard_active():
            raise RuntimeError(
                "app/label_server must be served behind its request guard: start it with `unetseg serve`, or add "
                "`--uvicorn_app app.label_server.asgi:app` to `monailabel start_server` (docs/monai_label.md)"
            )
        super().on_init_complete()

    def infer(self, request, datastore=None):
        """MONAI Label's ``infer`` after refusing an image, label tag or model file name that is a path."""
        sessions = self.sessions()
        allowed = [sessions.store_path] if sessions is not None else []
        try:
            check_infer_request(request, allowed_dirs=allowed)
        except UnsafeNameError as exc:
            raise refuse(exc) from None
        image = request.get("image")
        if isinstance(image, str):
            path = image if "/" in image else self.datastore().get_image_uri(image)
            if not path:
                raise HTTPException(status_code=404, detail=f"image id {image!r} is not in the datastore")
            self._check_dimension(request.get("model"), image, path)
        return super().infer(request, datastore)

    def _check_dimension(self, model, image: str, path: str) -> None:
        """Refuse (400) a 2D slice for a 3D model and a volume for a 2D model, before the bundle fails on it."""
        task = self._infers.get(model) if isinstance(model, str) else None
        if task is None:
            return  # MONAI Label answers an unknown model itself
        got = image_dimension(path)
        if got != task.dimension:
            detail = (
                f"model {model} segments {task.dimension}D images; image {os.path.basename(image)!r} is "
                f"{got}D (2D: {', '.join(SLICE_SUFFIXES)} files)"
            )
            logger.warning("refused: %s", detail)
            raise HTTPException(status_code=400, detail=detail)
