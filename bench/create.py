"""Link creations per second through ``POST /api/v1/links``.

    .venv/bin/python bench/create.py [--seconds 10] [--connections 32]

One granian worker pinned to core 0 on a fresh SQLite store (rate limit off:
``STEADYLINK_LIMITS_CREATE_PER_MINUTE=0``), driven by wrk on core 1 with a
Lua script that POSTs a different JSON body each time. Prints creations/s
(201 answers), p50 and p99; stops every process it starts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from harness import free_port, run_wrk, start_granian, stop

LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"url": "https://example.com/item/%d/%d"}', counter, math.random(1, 1e9))
  return wrk.format("POST", "/api/v1/links", {["Content-Type"] = "application/json"}, body)
end
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="steadylink-bench-create-"))
    script = work / "create.lua"
    script.write_text(LUA)
    port = free_port()
    env = {
        "STEADYLINK_DATA_DIR": str(work),
        "STEADYLINK_RELEASE_ID": "bench",
        "STEADYLINK_LIMITS_CREATE_PER_MINUTE": "0",
    }
    server = start_granian(port, env, core=0, log=work / "granian.log")
    try:
        url = f"http://127.0.0.1:{port}"
        run_wrk(url, script=script, seconds=2, core=1, connections=args.connections)
        figures = run_wrk(url, script=script, seconds=args.seconds, core=1, connections=args.connections)
    finally:
        stop(server)
    print(figures.line("POST /api/v1/links"))
    print(f"target >= 2,000 creations/s: {'met' if figures.requests_per_second >= 2000 else 'NOT met'}")


if __name__ == "__main__":
    main()
