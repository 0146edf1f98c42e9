"""``python -m helpers.local``: ``python -m localaws`` with the workshop's state folder and port."""

import os
import sys

from helpers.config import ConfigError, local_port, state_dir
from localaws.__main__ import main

if __name__ == "__main__":
    try:
        os.environ.setdefault("LOCALAWS_STATE_DIR", str(state_dir()))
        os.environ.setdefault("LOCALAWS_PORT", str(local_port()))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(prog="python -m helpers.local", port_setting="WORKSHOP_LOCAL_PORT"))
