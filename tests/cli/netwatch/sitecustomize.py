"""Network watch for the tests: every Python process started with this folder on ``PYTHONPATH`` logs its socket
activity.

Python imports ``sitecustomize`` at start-up, so the command under test and every Python child it starts
(``PYTHONPATH`` is inherited; forked children keep the hook) install an audit hook (PEP 578) that appends one JSON
line per ``socket.*`` audit event to the file named by ``UNETSEG_NETWATCH_LOG``: the event, the socket's address
family where there is a socket, the address or host name, the process id, and the innermost frames of the Python
stack that caused it. Classifying the events (what is network, what is local IPC) is the test's job
(``tests/cli/test_no_network.py``); this file only records, and never blocks anything.

Native code that opens sockets without Python's ``socket`` module is not seen here; ``strace`` covers that.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

_LOG = os.environ.get("UNETSEG_NETWATCH_LOG")


def _record(event: str, args: tuple) -> None:
    if not event.startswith("socket."):
        return
    entry: dict = {"pid": os.getpid(), "event": event}
    first = args[0] if args else None
    if event == "socket.__new__":  # (self, family, type, protocol)
        entry["family"] = int(args[1]) if len(args) > 1 and isinstance(args[1], int) else None
    elif hasattr(first, "family"):  # socket.connect/bind/sendto/sendmsg(self, address)
        entry["family"] = int(first.family)
        address = args[1] if len(args) > 1 else None
        entry["address"] = repr(address)
        if isinstance(address, tuple) and address and isinstance(address[0], str):
            entry["host"] = address[0]
    else:  # getaddrinfo(host, ...), gethostbyname(host), gethostbyaddr(ip), getnameinfo(sockaddr), ...
        entry["host"] = first if isinstance(first, (str, bytes)) or first is None else repr(first)
        if isinstance(entry["host"], bytes):
            entry["host"] = entry["host"].decode("ascii", "replace")
    entry["stack"] = [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_stack(limit=40)[:-2]]
    with open(_LOG, "a", encoding="utf-8") as fh:  # type: ignore[arg-type]
        fh.write(json.dumps(entry) + "\n")


if _LOG:
    with open(_LOG, "a", encoding="utf-8") as _fh:  # one line per watched process, so a test can tell it ran
        _fh.write(json.dumps({"pid": os.getpid(), "event": "netwatch.start"}) + "\n")
    sys.addaudithook(_record)
