"""Test server: the threaded server, slow to become ready when told.

If the file named by $HT_BEHAVIOUR_FILE says `slow SECONDS`, it prints
"starting slowly" and sleeps that long before it binds, in this very process (no
child to leave behind), as a new version that loads a large configuration or warms
a cache does; then it serves like the threaded server. Otherwise it is the threaded
server ("crash" and "hang" included).
"""

from __future__ import annotations

import os
import re
import time

import threaded_server


def start_delay() -> float:
    """The SECONDS of `slow SECONDS` in $HT_BEHAVIOUR_FILE, else 0."""
    path = os.environ.get("HT_BEHAVIOUR_FILE")
    try:
        with open(path or "", encoding="utf-8", errors="replace") as f:
            found = re.search(r"\bslow\s+([0-9.]+)", f.read())
    except OSError:
        return 0.0
    return float(found.group(1)) if found else 0.0


def main() -> None:
    delay = start_delay()
    if delay > 0:
        print(f"generation {os.environ.get('HUPTIME_GENERATION', '0')} pid {os.getpid()} "
              f"starting slowly ({delay:g} s)", flush=True)
        time.sleep(delay)
    threaded_server.main()


if __name__ == "__main__":
    main()
