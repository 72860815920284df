"""Exit 0 when PostgreSQL and Redis both answer on 127.0.0.1, else 1 (used by test.sh)."""

import socket
import sys

for port in (5432, 6379):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        sys.exit(1)
sys.exit(0)
