#!/usr/bin/env python3
"""A fake authctl agent: a Unix socket listener that records what clients send (stdlib only).

    fake_agent.py SOCKET_PATH

Binds SOCKET_PATH (mode 0777, so any user may connect), prints "ready", accepts every connection
and counts the bytes clients send without answering. When a line arrives on stdin (or after 30 s)
it prints one JSON line and exits:

    {"accepted": N, "bytes": N}
"""

import json
import os
import select
import socket
import sys
import time


def main():
    path = sys.argv[1]
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o777)
    srv.listen(16)
    print("ready", flush=True)
    conns, accepted, total = [], 0, 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        readable, _, _ = select.select([srv, sys.stdin] + conns, [], [], 0.5)
        for r in readable:
            if r is srv:
                c, _ = srv.accept()
                conns.append(c)
                accepted += 1
            elif r is sys.stdin:
                sys.stdin.readline()
                deadline = 0
            else:
                try:
                    data = r.recv(65536)
                except OSError:
                    data = b""
                total += len(data)
                if not data:
                    conns.remove(r)
                    r.close()
    print(json.dumps({"accepted": accepted, "bytes": total}), flush=True)


if __name__ == "__main__":
    main()
