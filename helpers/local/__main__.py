"""``python -m helpers.local start|stop|status|url|serve``: manage the embedded local AWS server."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from helpers.config import ConfigError, local_port, state_dir
from helpers.local import server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.local", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "url", "serve"])
    parser.add_argument("--port", type=int, help="port to listen on (default: WORKSHOP_LOCAL_PORT or 4577)")
    parser.add_argument(
        "--state-dir", type=Path, help="state folder (default: WORKSHOP_STATE_DIR or .workshop/)"
    )
    args = parser.parse_args(argv)
    try:
        folder = (args.state_dir or state_dir()).resolve()
        port = args.port or local_port()
        if args.command == "serve":
            server.serve(port, folder)
        elif args.command in ("start", "url"):
            url = server.ensure_running(folder, port)
            print(url if args.command == "url" else f"local AWS running at {url} (state folder {folder})")
        elif args.command == "stop":
            was = server.stop(folder)
            print("local AWS stopped" if was else "local AWS was not running")
        else:
            info = server.status(folder)
            print(json.dumps(info, indent=2) if info else "local AWS is not running")
            return 0 if info else 3
    except (ConfigError, server.LocalServerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
