"""The ASGI app the server runs: MONAI Label's FastAPI app behind :class:`~app.label_server.guard.RequestGuard`.

Started by ``unetseg serve`` as ``monailabel start_server --uvicorn_app app.label_server.asgi:app ...`` (an option
of MONAI Label's own command). The guard's settings come from MONAI Label's ``--conf`` pairs, which
``start_server`` keeps in ``settings.MONAI_LABEL_APP_CONF``:

``token_file``
    file holding the token (:mod:`app.label_server.server_token`; ``UNETSEG_SERVE_TOKEN`` wins when set).
    Neither: the server is read-only.
``allow_origins``
    comma-separated extra browser origins (``scheme://host[:port]``); the server's own loopback origins are
    always allowed.
``allow_hosts``
    comma-separated extra host names accepted in the ``Host`` header (loopback names always are).

Importing this module needs monailabel (the label environment).
"""

from __future__ import annotations

import logging
import os

from monailabel.app import app as monailabel_app
from monailabel.config import settings

from app.label_server.guard import RequestGuard, settings_from, split_list
from app.label_server.server_token import read_token

logger = logging.getLogger(__name__)

_conf = settings.MONAI_LABEL_APP_CONF or {}
guard_settings = settings_from(
    token=read_token(_conf.get("token_file"), os.environ),
    port=int(settings.MONAI_LABEL_SERVER_PORT),
    origins=split_list(_conf.get("allow_origins")),
    hosts=split_list(_conf.get("allow_hosts")),
)
if guard_settings.token is None:
    logger.warning("no server token (token_file or UNETSEG_SERVE_TOKEN): the server is read-only")
logger.info(
    "request guard: origins %s; hosts %s",
    ", ".join(sorted(guard_settings.origins)),
    ", ".join(sorted(guard_settings.hosts)),
)

app = RequestGuard(monailabel_app, guard_settings)
