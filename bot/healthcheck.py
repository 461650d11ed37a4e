"""`python -m bot.healthcheck [PATH]`: exit 0 when the bot on this machine answers 200 on
PATH (default /healthz), else 1 with one line on stderr. The container's HEALTHCHECK:
the slim image has no curl. Standard library only, so it starts fast."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 3.0


def main(argv: list[str]) -> int:
    port = os.environ.get("PORT", "").strip() or "3000"
    path = argv[0] if argv else "/healthz"
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        sys.stderr.write(f"unhealthy: {url} did not answer ({type(exc).__name__})\n")
        return 1
    if status != 200:
        sys.stderr.write(f"unhealthy: {url} answered {status}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
