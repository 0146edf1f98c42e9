"""``python -m localaws start|stop|status|url|serve``: manage the embedded local AWS server.

Settings come from the arguments, else from ``LOCALAWS_PORT`` (default 4577) and
``LOCALAWS_STATE_DIR`` (default ``./.localaws``). The server knows nothing of the workshop.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from localaws import server

DEFAULT_PORT = 4580  # not the workshop's 4577: a bare `python -m localaws start` must not take its port


def _default_port() -> int:
    raw = os.environ.get("LOCALAWS_PORT", str(DEFAULT_PORT))
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise server.LocalServerError(
            f"LOCALAWS_PORT={raw!r} is not a port number: use one from 1024 to 65535."
        )
    return int(raw)


def main(
    argv: list[str] | None = None, *, prog: str = "python -m localaws", port_setting: str = "LOCALAWS_PORT"
) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "url", "serve"])
    parser.add_argument(
        "--port", type=int, help=f"port to listen on (default: {port_setting} or {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--state-dir", type=Path, help="state folder (default: LOCALAWS_STATE_DIR or ./.localaws)"
    )
    args = parser.parse_args(argv)
    try:
        folder = (args.state_dir or Path(os.environ.get("LOCALAWS_STATE_DIR") or ".localaws")).resolve()
        port = args.port or _default_port()
        if args.command == "serve":
            server.serve(port, folder)
        elif args.command in ("start", "url"):
            url = server.ensure_running(folder, port, port_setting=port_setting)
            print(url if args.command == "url" else f"local AWS running at {url} (state folder {folder})")
        elif args.command == "stop":
            was = server.stop(folder)
            print("local AWS stopped" if was else "local AWS was not running")
        else:
            info = server.status(folder)
            print(json.dumps(info, indent=2) if info else "local AWS is not running")
            return 0 if info else 3
    except server.LocalServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
