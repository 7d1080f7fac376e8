#!/usr/bin/env python3
"""Opens many idle TCP connections to a port and holds them (stdlib only).

    flood.py HOST PORT COUNT

Raises its soft RLIMIT_NOFILE as far as needed (up to the hard limit), opens COUNT connections
(each connect waits at most 10 s), sends nothing, and prints one JSON line:

    {"connected": N, "failed": N, "first_error": "..."|null, "seconds": S}

Then it holds them: each line `report` on stdin makes it look at every connection without
blocking and print

    {"open": N, "closed_by_peer": N, "answered_bytes": N}

where `closed_by_peer` counts the connections the server closed or reset, and `answered_bytes`
the bytes any server sent (none is expected from a listener that refuses or waits); any other
line, or the end of stdin, prints that report a last time, closes everything and exits.
"""

import json
import resource
import socket
import sys
import time


def main():
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 64
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks, failed, first_error = [], 0, None
    started = time.monotonic()
    for _ in range(count):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(10.0)
        try:
            s.connect((host, port))
            socks.append(s)
        except OSError as e:
            failed += 1
            first_error = first_error or repr(e)
            s.close()
    print(json.dumps({
        "connected": len(socks),
        "failed": failed,
        "first_error": first_error,
        "seconds": round(time.monotonic() - started, 3),
    }), flush=True)
    answered = 0
    while True:
        command = sys.stdin.readline().strip()
        open_, closed = 0, 0
        for s in socks:
            s.setblocking(False)
            try:
                data = s.recv(65536)
                if data:
                    answered += len(data)
                    open_ += 1
                else:
                    closed += 1
            except BlockingIOError:
                open_ += 1
            except OSError:
                closed += 1
        print(json.dumps({"open": open_, "closed_by_peer": closed, "answered_bytes": answered}),
              flush=True)
        if command != "report":
            break
    for s in socks:
        s.close()

if __name__ == "__main__":
    main()
