"""``steadylink errors --file``: throughput and peak memory on a big foreign log.

    .venv/bin/python bench/error_hunt.py [--mb 500] [--keep FILE]

Writes a log of about ``--mb`` megabytes (eb-logs-like prefixes, request
lines, and every 200th line a 6-line traceback from one of three bugs, each
on drifting line numbers), groups it in this process, and prints MB/s, the
groups and their counts, and the peak resident memory (``ru_maxrss``): it
stays flat whatever the size, because the file is streamed.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from steadylink.incidents.error_hunt import hunt_file

BUGS = [
    (
        "application.py",
        "index",
        "data = json.load(body)",
        "AttributeError: 'str' object has no attribute 'read'",
    ),
    ("views.py", "show", "return links[code]", "KeyError: 'abc'"),
    ("store.py", "save", "fh = open(path)", "FileNotFoundError: [Errno 2] No such file or directory: 'x'"),
]


def write_log(path: Path, megabytes: int) -> int:
    target = megabytes * 1024 * 1024
    written = tracebacks = 0
    n = 0
    with path.open("w") as out:
        while written < target:
            n += 1
            prefix = f"Sep 20 19:{n // 60 % 60:02d}:{n % 60:02d} ip-172-31-7-{n % 9} web[{4000 + n % 7}]: "
            if n % 200 == 0:
                file, func, code, error = BUGS[tracebacks % 3]
                frame = f'  File "/var/app/current/{file}", line {20 + n % 5}, in {func}'
                lines = ["Traceback (most recent call last):", frame, f"    {code}", error]
                tracebacks += 1
            else:
                lines = [f'10.0.0.{n % 250} - - "GET /s/{n:x} HTTP/1.1" 302 0 "-" "Mozilla/5.0"']
            chunk = "".join(prefix + line + "\n" for line in lines)
            out.write(chunk)
            written += len(chunk)
    return tracebacks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--keep", type=Path, default=None, help="Write the log here and keep it.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-errors-") as tmp:
        log = args.keep or Path(tmp) / "web.stdout.log"
        written = write_log(log, args.mb)
        size = log.stat().st_size / 1024 / 1024
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        groups = hunt_file(log)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"log {size:,.0f} MB, {written:,} tracebacks written")
    print(f"grouped in {seconds:.1f} s: {size / seconds:,.0f} MB/s")
    for group in groups:
        print(f"  {group.count:>8,} x {group.title}")
    print(f"peak RSS {peak / 1024:,.0f} MB (before grouping {before / 1024:,.0f} MB)")
    sys.exit(0 if len(groups) == 3 and sum(g.count for g in groups) == written else 1)


if __name__ == "__main__":
    main()
