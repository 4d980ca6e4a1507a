#!/usr/bin/python3
"""Helpers for bench/run (standard library only).

  probe.py latency PORT PATH N      N sequential GETs on one keep-alive connection;
                                    prints "p50_ms p90_ms max_ms statuses"
  probe.py herd PORT PATH N CHECK   N connections opened first, then N GETs sent at
                                    once (threads + barrier); counts the check's runs
                                    from /metrics before and after; prints key=value lines
  probe.py runs PORT CHECK          healthd_check_runs_total{check=CHECK}
  probe.py fresh PORT PATH N GAP    N GETs, each on a fresh connection, GAP s apart
                                    (timeout 5 s each); prints "p50_ms max_ms answered
                                    failed" (failed: closed, refused or timed out)
"""
import http.client
import socket
import statistics
import sys
import threading
import time


def get(port, path, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def runs(port, check):
    status, body = get(port, "/metrics")
    if status != 200:
        raise SystemExit(f"/metrics answered {status}")
    key = f'healthd_check_runs_total{{check="{check}"}}'
    for line in body.decode().splitlines():
        if line.startswith(key + " "):
            return int(float(line.split()[-1]))
    raise SystemExit(f"no {key} in /metrics")


def latency(port, path, n):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times, statuses = [], set()
    for _ in range(n):
        t0 = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        times.append((time.perf_counter() - t0) * 1000)
        statuses.add(r.status)
    c.close()
    times.sort()
    p90 = times[min(len(times) - 1, int(round(0.9 * len(times))) - 1)]
    print(f"{statistics.median(times):.1f} {p90:.1f} {times[-1]:.1f} "
          f"{','.join(str(s) for s in sorted(statuses))}")


def herd(port, path, n, check):
    before = runs(port, check)
    conns = []
    for _ in range(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.connect()  # connected before the start, so the sends are close together
        conns.append(c)
    barrier = threading.Barrier(n + 1)
    sent, done, statuses = [0.0] * n, [0.0] * n, [None] * n

    def one(i):
        barrier.wait()
        sent[i] = time.perf_counter()
        try:
            conns[i].request("GET", path)
            r = conns[i].getresponse()
            r.read()
            statuses[i] = r.status
        except Exception as e:  # counted as not answered
            statuses[i] = type(e).__name__
        done[i] = time.perf_counter()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    after = runs(port, check)
    answered = sum(1 for s in statuses if isinstance(s, int))
    ok = sum(1 for s in statuses if s == 200)
    print(f"requests={n}")
    print(f"answered={answered}")
    print(f"status200={ok}")
    print(f"runs={after - before}")
    print(f"send_spread_ms={(max(sent) - min(sent)) * 1000:.1f}")
    print(f"wall_ms={wall * 1000:.0f}")
    print(f"first_answer_ms={(min(done) - t0) * 1000:.0f}")
    print(f"last_answer_ms={(max(done) - t0) * 1000:.0f}")


def fresh(port, path, n, gap):
    took, failed = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            status, _ = get(port, path, timeout=5)
            if status == 200:
                took.append((time.perf_counter() - t0) * 1000)
            else:
                failed += 1
        except (OSError, http.client.HTTPException):
            failed += 1
        time.sleep(gap)
    if took:
        print(f"{statistics.median(took):.1f} {max(took):.1f} {len(took)} {failed}")
    else:
        print(f"n/a n/a 0 {failed}")


def main(argv):
    if len(argv) >= 5 and argv[1] == "latency":
        latency(int(argv[2]), argv[3], int(argv[4]))
    elif len(argv) >= 6 and argv[1] == "herd":
        herd(int(argv[2]), argv[3], int(argv[4]), argv[5])
    elif len(argv) >= 6 and argv[1] == "fresh":
        fresh(int(argv[2]), argv[3], int(argv[4]), float(argv[5]))
    elif len(argv) >= 4 and argv[1] == "runs":
        print(runs(int(argv[2]), argv[3]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
