"""Checks on the names a MONAI Label client sends, so none of them can reach a file outside the datastore.

MONAI Label 0.8.5 joins client-supplied strings to folders: image and label ids (``<studies>/<id>.nii.gz``),
label tags (``<studies>/labels/<tag>/``) and ``model_filename`` (``<bundle>/models/<name>``); and its ``infer``
takes any *existing path* given as ``image`` as the image itself. A ``../`` or an absolute path there reads or
writes files anywhere the server can. These functions refuse such values; the server's datastore and app call
them before MONAI Label uses the value.

Only the standard library is used, so the main environment tests them without monailabel.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping

#: characters a plain name may not hold: path separators and NUL
_FORBIDDEN = ("/", "\\", "\x00")


class UnsafeNameError(ValueError):
    """A client-supplied id, tag or file name that could name a path outside its folder."""

    def __init__(self, what: str, value: object):
        self.what = what
        self.value = value
        super().__init__(
            f"refused {what} {value!r}: only plain names are accepted "
            "(no '/', '\\', '..', NUL or leading '.'; at most 255 characters)"
        )


def check_name(value: object, what: str = "id") -> str:
    """Return ``value`` if it is a plain name (a datastore id, a label tag or a file name), else raise.

    Raises:
        UnsafeNameError: not a string, empty, longer than 255, holding a path separator, NUL or ``..``, or
            starting with ``.``.
    """
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 255
        or value.startswith(".")
        or ".." in value
        or any(c in value for c in _FORBIDDEN)
    ):
        raise UnsafeNameError(what, value)
    return value


def is_within(path: str, folders: Iterable[str]) -> bool:
    """Whether ``path`` (after resolving links and ``..``) lies inside one of ``folders``."""
    real = os.path.realpath(path)
    for folder in folders:
        root = os.path.realpath(folder)
        if os.path.commonpath([real, root]) == root and real != root:
            return True
    return False


def is_upload(path: str) -> bool:
    """Whether ``path`` looks like the temporary file MONAI Label writes for an uploaded image.

    MONAI Label's ``/infer`` endpoint saves an uploaded file with ``tempfile.NamedTemporaryFile(suffix=...).name``
    directly in the temporary folder and passes that path on as the image. Such a name is random, so a client
    cannot point at someone else's upload by guessing.
    """
    real = os.path.realpath(path)
    return (
        os.path.dirname(real) == os.path.realpath(tempfile.gettempdir())
        and os.path.basename(real).startswith("tmp")
        and os.path.isfile(real)
    )


def check_infer_request(request: Mapping, *, allowed_dirs: Iterable[str] = ()) -> None:
    """Refuse an inference request whose image, label tag or model file name could escape its folder.

    ``request["image"]`` may be a datastore id (a plain name), an uploaded temporary file (:func:`is_upload`), or
    a file inside ``allowed_dirs`` (MONAI Label's session store). Anything else that is a path is refused, so
    ``../../etc/passwd`` and ``/home/user/x.nii.gz`` are never read.

    Raises:
        UnsafeNameError: on the first unsafe value.
    """
    image = request.get("image")
    if isinstance(image, str):
        looks_like_path = os.sep in image or "/" in image or image.startswith(".")
        if looks_like_path and not (is_upload(image) or is_within(image, allowed_dirs)):
            raise UnsafeNameError("image", image)
        if not looks_like_path:
            check_name(image, "image id")
    elif image is not None:
        raise UnsafeNameError("image", image)
    if "label_tag" in request:
        check_name(request["label_tag"], "label tag")
    _check_model_filename(request)


def check_train_request(request: Mapping) -> None:
    """Refuse a training request whose ``model_filename`` or non-empty ``run_id`` is not a plain name.

    Raises:
        UnsafeNameError: on the first unsafe value.
    """
    _check_model_filename(request)
    if request.get("run_id"):  # empty: the bundle's "run"
        check_name(request["run_id"], "run_id")


def _check_model_filename(request: Mapping) -> None:
    name = request.get("model_filename")
    if name is None:
        return
    for item in name if isinstance(name, list) else [name]:
        check_name(item, "model_filename")
