"""Container health check: GET /healthz on the service's metrics port (stdlib only).

The port comes from `SKIFF_METRICS_PORT` (default 9100), the same port the Helm chart
probes. Exit 0 when the endpoint answers 2xx, 1 otherwise.
"""

import os
import sys
import urllib.request

port = os.environ.get("SKIFF_METRICS_PORT", "9100")
path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
        sys.exit(0 if 200 <= response.status < 300 else 1)
except OSError as error:
    print(f"unhealthy: {error}", file=sys.stderr)
    sys.exit(1)
