"""MONAI Label's local folder datastore, refusing ids and tags that are paths.

:class:`GuardedLocalDatastore` is MONAI Label's ``LocalDatastore`` (images in ``<studies>/``, labels in
``<studies>/labels/<tag>/``, index in ``<studies>/datastore_v2.json``) with every method that builds a path from
a client's image id, label id or tag checked by :func:`app.label_server.safety.check_name` first. Look-ups by
id (``get_image_uri`` and friends) are already safe in MONAI Label (they only find ids in the index) and are
not changed.

A refused value raises ``fastapi.HTTPException(400)``, which the server answers as ``400 Bad Request`` with the
reason; MONAI Label's own exceptions would surface as ``500``.
"""

from __future__ import annotations

import logging

from fastapi import HTTPException
from monailabel.datastore.local import LocalDatastore

from app.label_server.safety import UnsafeNameError, check_name

logger = logging.getLogger(__name__)


def refuse(exc: UnsafeNameError) -> HTTPException:
    """The HTTP error for a refused name (and a log line naming it)."""
    logger.warning("%s", exc)
    return HTTPException(status_code=400, detail=str(exc))


def _check(value, what: str) -> None:
    try:
        check_name(value, what)
    except UnsafeNameError as exc:
        raise refuse(exc) from None


class GuardedLocalDatastore(LocalDatastore):
    """``LocalDatastore`` whose writing and deleting methods accept only plain ids and tags."""

    def add_image(self, image_id, image_filename, image_info):
        if image_id:  # empty: MONAI Label derives the id from the uploaded file's base name
            _check(image_id, "image id")
        return super().add_image(image_id, image_filename, image_info)

    def remove_image(self, image_id):
        _check(image_id, "image id")
        return super().remove_image(image_id)

    def save_label(self, image_id, label_filename, label_tag, label_info):
        _check(image_id, "image id")
        _check(label_tag, "label tag")
        return super().save_label(image_id, label_filename, label_tag, label_info)

    def remove_label(self, label_id, label_tag):
        _check(label_id, "label id")
        _check(label_tag, "label tag")
        return super().remove_label(label_id, label_tag)

    def update_image_info(self, image_id, info):
        _check(image_id, "image id")
        return super().update_image_info(image_id, info)

    def update_label_info(self, label_id, label_tag, info):
        _check(label_id, "label id")
        _check(label_tag, "label tag")
        return super().update_label_info(label_id, label_tag, info)
