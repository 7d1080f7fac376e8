#!/usr/bin/env python3
"""Sends one raw request on a new TCP connection and says how the server answered (stdlib only).

    probe.py HOST PORT REQUEST

REQUEST is sent as is (e.g. a forged loopback callback: "GET /callback?state=…&error=… HTTP/1.1
\\r\\nHost: …\\r\\n\\r\\n"); then everything the server sends is read until it closes (at most 5 s).
Prints one JSON line:

    {"outcome": "eof"|"reset"|"timeout"|"refused", "bytes": N, "answer": "first 200 bytes",
     "send_error": "..."|null}
"""

import json
import socket
import sys


def main():
    host, port, request = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5.0)
    out = {"outcome": None, "bytes": 0, "answer": "", "send_error": None}
    try:
        s.connect((host, port))
    except OSError as e:
        out.update(outcome="refused", send_error=repr(e))
        print(json.dumps(out), flush=True)
        return
    try:
        s.sendall(request.encode())
    except OSError as e:
        out["send_error"] = repr(e)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                out["outcome"] = "eof"
                break
            data += chunk
    except ConnectionResetError:
        out["outcome"] = "reset"
    except socket.timeout:
        out["outcome"] = "timeout"
    except OSError as e:
        out["outcome"] = "reset"
        out["send_error"] = out["send_error"] or repr(e)
    out["bytes"] = len(data)
    out["answer"] = data[:200].decode("latin-1")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
