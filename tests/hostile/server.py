#!/usr/bin/env python3
"""A hostile resource + authorization server for authctl's attack tests (stdlib only).

    python3 tests/hostile/server.py

Binds 127.0.0.1 on an OS-assigned port and prints one line to stdout when ready:

    {"port": PORT, "base": "http://127.0.0.1:PORT"}

then serves until killed. It plays an MCP-style protected resource (RFC 9728) whose metadata
names this server as its authorization server (RFC 8414 / OpenID discovery, RFC 7591 dynamic
registration, an authorization and a token endpoint), and each answer can be made hostile through
the configuration (`POST /__hostile/config`, a JSON object merged into the current one; `{base}`
in any string is replaced by this server's base URL):

  challenge           the 401's WWW-Authenticate value on /mcp
                      (default: Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp")
  resource_metadata   fields merged into the resource metadata; null: that document is 404
  as_metadata         fields merged into the authorization-server metadata (a null value removes
                      the field); null: no metadata (404)
  huge_metadata_mb    N: the authorization-server metadata is N MiB of JSON, streamed chunked with
                      no Content-Length
  register_status     the registration endpoint's status (default 201; an error body otherwise)
  authorize           what GET /authorize does:
                        "page"         (default) a 200 page
                        "bounce"       302 to `honest_authorize` with `honest_client_id` and the
                                       request's redirect_uri, state, code_challenge(_method),
                                       scope=openid, response_type=code: the mix-up attack
                        "bounce_plain" the same with redirect_uri's path replaced by /callback (the
                                       path the honest server's loopback registration allows)
                        "callback"     302 straight to the request's redirect_uri with its state
                                       and code=hostile-code (no iss)
  honest_authorize    the honest server's authorization endpoint
  honest_client_id    a client id there that accepts loopback redirects

Every request other than the control endpoints is recorded (method, path, query, headers, body);
`GET /__hostile/requests` returns them as a JSON array. The token endpoint (POST /token) answers
400 invalid_grant: it is there to be watched, never to succeed.
"""

import http.server
import json
import socketserver
import sys
import threading
import urllib.parse

LOCK = threading.Lock()
REQUESTS = []
CONFIG = {}
BASE = ""


def fill(value):
    """`{base}` replaced in every string of `value`."""
    if isinstance(value, str):
        return value.replace("{base}", BASE)
    if isinstance(value, list):
        return [fill(v) for v in value]
    if isinstance(value, dict):
        return {k: fill(v) for k, v in value.items()}
    return value


def conf(key, default=None):
    with LOCK:
        if key not in CONFIG:
            return default
        return fill(CONFIG[key])


def resource_metadata():
    doc = {
        "resource": BASE + "/mcp",
        "authorization_servers": [BASE],
        "scopes_supported": ["mcp:read"],
        "bearer_methods_supported": ["header"],
    }
    extra = conf("resource_metadata", {})
    if extra is None:
        return None
    doc.update(extra)
    return doc


def as_metadata():
    doc = {
        "issuer": BASE,
        "authorization_endpoint": BASE + "/authorize",
        "token_endpoint": BASE + "/token",
        "registration_endpoint": BASE + "/register",
        "jwks_uri": BASE + "/jwks",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["openid", "offline_access"],
    }
    extra = conf("as_metadata", {})
    if extra is None:
        return None
    for k, v in extra.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = v
    return doc


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hostile/1.0"

    def log_message(self, fmt, *args):
        sys.stderr.write("[hostile] %s\n" % (fmt % args))

    # -- helpers -----------------------------------------------------------------------------

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(n, 1 << 20)).decode("utf-8", "replace") if n else ""

    def send(self, status, payload, ctype="application/json", headers=None):
        data = payload if isinstance(payload, bytes) else (
            payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def stream_huge(self, mb):
        """N MiB of JSON, chunked, no Content-Length; stops when the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        total = int(mb * 1024 * 1024)
        sent = 0

        def chunk(data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

        try:
            chunk(b'{"issuer":"' + BASE.encode() + b'","padding":"')
            piece = b"a" * (64 * 1024)
            while sent < total:
                chunk(piece)
                sent += len(piece)
            chunk(b'"}')
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        with LOCK:
            REQUESTS.append({"method": "STREAMED", "path": self.path, "bytes": sent})

    def record(self, body):
        u = urllib.parse.urlsplit(self.path)
        with LOCK:
            REQUESTS.append({
                "method": self.command,
                "path": u.path,
                "query": u.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            })

    # -- routes ------------------------------------------------------------------------------

    def do_GET(self):
        self.route("")

    def do_POST(self):
        self.route(self.body())

    def route(self, body):
        u = urllib.parse.urlsplit(self.path)
        path = u.path
        if path.startswith("/__hostile/"):
            return self.control(path, body)
        self.record(body)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))

        if path == "/mcp":
            return self.send(401, {"error": "unauthorized"}, headers={
                "WWW-Authenticate": conf(
                    "challenge",
                    'Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"'),
            })
        if path in ("/.well-known/oauth-protected-resource/mcp",
                    "/.well-known/oauth-protected-resource"):
            doc = resource_metadata()
            return self.send(404, {"error": "not found"}) if doc is None else self.send(200, doc)
        if path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
            mb = conf("huge_metadata_mb")
            if mb:
                return self.stream_huge(mb)
            doc = as_metadata()
            return self.send(404, {"error": "not found"}) if doc is None else self.send(200, doc)
        if path == "/register" and self.command == "POST":
            status = conf("register_status", 201)
            if status != 201:
                return self.send(status, {"error": "invalid_client_metadata",
                                          "error_description": "refused by the hostile server"})
            try:
                meta = json.loads(body or "{}")
            except ValueError:
                meta = {}
            return self.send(201, {
                "client_id": "hostile-client",
                "redirect_uris": meta.get("redirect_uris", []),
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            })
        if path == "/authorize":
            return self.authorize(q)
        if path == "/token":
            return self.send(400, {"error": "invalid_grant", "error_description": "hostile"})
        if path == "/jwks":
            return self.send(200, {"keys": []})
        return self.send(404, {"error": "not found"})

    def authorize(self, q):
        mode = conf("authorize", "page")
        redirect_uri = q.get("redirect_uri", "")
        if mode in ("bounce", "bounce_plain"):
            if mode == "bounce_plain":
                r = urllib.parse.urlsplit(redirect_uri)
                redirect_uri = urllib.parse.urlunsplit((r.scheme, r.netloc, "/callback", "", ""))
            params = {
                "client_id": conf("honest_client_id", "authctl-native"),
                "redirect_uri": redirect_uri,
                "state": q.get("state", ""),
                "code_challenge": q.get("code_challenge", ""),
                "code_challenge_method": q.get("code_challenge_method", "S256"),
                "scope": "openid",
                "response_type": "code",
            }
            target = conf("honest_authorize", "") + "?" + urllib.parse.urlencode(params)
            return self.send(302, "", ctype="text/plain", headers={"Location": target})
        if mode == "callback":
            params = {"code": "hostile-code", "state": q.get("state", "")}
            target = redirect_uri + "?" + urllib.parse.urlencode(params)
            return self.send(302, "", ctype="text/plain", headers={"Location": target})
        return self.send(200, "<html><body>hostile authorization page</body></html>",
                         ctype="text/html")

    def control(self, path, body):
        if path == "/__hostile/config" and self.command == "POST":
            with LOCK:
                CONFIG.update(json.loads(body or "{}"))
                out = dict(CONFIG)
            return self.send(200, out)
        if path == "/__hostile/requests" and self.command == "GET":
            with LOCK:
                out = list(REQUESTS)
            return self.send(200, out)
        return self.send(404, {"error": "unknown control endpoint"})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global BASE
    srv = Server(("127.0.0.1", 0), Handler)
    port = srv.server_address[1]
    BASE = "http://127.0.0.1:%d" % port
    sys.stdout.write(json.dumps({"port": port, "base": BASE}) + "\n")
    sys.stdout.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
