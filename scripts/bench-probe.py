#!/usr/bin/env python3
"""bench-probe.py: the independent health prober of scripts/bench-downtime.sh.

    bench-probe.py probe URL LOG [INTERVAL_MS]   probe URL every INTERVAL_MS (default 10) until
                                                 killed; each probe appends "epoch_ms code" to
                                                 LOG (code 0: no answer, connection refused or
                                                 timed out)
    bench-probe.py measure LOG T0_MS             print "command_to_healthy_ms downtime_ms" for a
                                                 procedure started at T0_MS (see below), or "- -"

command -> healthy: from T0 to the first passing (2xx) probe that follows a failing one
(broken service: its 503s; healthy service: the outage of the restart).
downtime: from the last probe that got any answer before the service stopped answering to that
first passing probe. With no unanswered probe at all, downtime is the span of failing probes.
"""
import http.client
import sys
import time


def probe(url, log, interval_ms):
    assert url.startswith("http://")
    hostport, _, path = url[len("http://"):].partition("/")
    host, _, port = hostport.partition(":")
    path = "/" + path
    step = interval_ms / 1000.0
    with open(log, "a", buffering=1) as out:
        nxt = time.monotonic()
        while True:
            code = 0
            try:
                c = http.client.HTTPConnection(host, int(port or 80), timeout=1)
                c.request("GET", path)
                code = c.getresponse().status
                c.close()
            except OSError:
                code = 0
            out.write("%d %d\n" % (time.time_ns() // 1_000_000, code))
            nxt += step
            time.sleep(max(0.0, nxt - time.monotonic()))


def measure(log, t0):
    rows = []
    with open(log) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:  # a line cut by the kill is dropped
                rows.append((int(parts[0]), int(parts[1])))
    ok = lambda code: 200 <= code < 300
    after = [i for i, (t, _) in enumerate(rows) if t >= t0]
    fail = next((i for i in after if not ok(rows[i][1])), None)
    if fail is None:
        return None
    healthy = next((i for i in range(fail, len(rows)) if ok(rows[i][1])), None)
    if healthy is None:
        return None
    t_ok = rows[healthy][0]
    gap = next((i for i in range(fail, healthy) if rows[i][1] == 0), None)
    if gap is None:
        start = rows[fail - 1][0] if fail > 0 else rows[fail][0]
    else:
        answered = [i for i in range(0, gap) if rows[i][1] != 0]
        start = rows[answered[-1]][0] if answered else rows[gap][0]
    return t_ok - t0, t_ok - start


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "probe":
        probe(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 10)
    elif len(sys.argv) == 4 and sys.argv[1] == "measure":
        m = measure(sys.argv[2], int(sys.argv[3]))
        print("- -" if m is None else "%d %d" % m)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
