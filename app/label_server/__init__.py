"""MONAI Label server for the project's bundles (runs in its own environment, see docs/monai_label.md).

Modules::

    bundles.py    find bundles/<name>/, their label names (channel_def), and the served copies (stdlib only)
    safety.py     refuse ids, tags and file names that are paths (stdlib only)
    datastore.py  MONAI Label's local datastore with those checks (needs monailabel)
    tasks.py      MONAI Label's bundle infer/train tasks, strict weights, val_interval option (needs monailabel)
    main.py       the MONAILabelApp that ``monailabel start_server --app app/label_server`` loads (needs monailabel)
    guard.py      the request guard: Host, Origin (CORS) and token checks in front of MONAI Label (stdlib only)
    asgi.py       MONAI Label's app behind the guard, served with ``--uvicorn_app`` (needs monailabel)
    server_token.py  the server token: environment or a private file (stdlib only)
    process.py    ``unetseg serve``'s supervised child: signals forwarded, no orphan (stdlib only)

Importing this package imports nothing from monailabel, so the main environment can use (and test) the
stdlib-only modules.
"""
