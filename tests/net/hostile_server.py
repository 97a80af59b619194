#!/usr/bin/env python3
"""A hostile loopback HTTP server for the `hearth pull` tests.

Two servers share one handler: the "hub" on 127.0.0.1 and the "CDN" on
127.0.0.2 (another port of 127.0.0.1 where that address is missing). Both take
a random free port and print "HUB_ORIGIN CDN_ORIGIN" on one line of stdout.
The process exits by itself after --lifetime seconds, whatever happens.

Hub paths look like Hugging Face's: /ORG/MODE/resolve/REV/FILE. MODE picks the
behaviour (see MODES below); the CDN serves /cdn/MODE/FILE. GET /stats returns
the number of requests per mode as JSON, and whether any CDN request carried
an Authorization header.
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DATA = b""
SHA = ""
HUB = ""
CDN = ""
DEADLINE = 0.0
TOKEN = "sekrit-test-token"
STATS = {}
CDN_SAW_AUTH = []
LOCK = threading.Lock()

MODES = """
good       302 to the CDN with X-Linked-ETag (sha256) and X-Linked-Size; CDN honours Range
direct     200 straight from the hub, ETag = the quoted sha256, honours Range
badsha     like good, but X-Linked-ETag is the sha256 of something else
short      200 with the full Content-Length, half the body, then the connection closes
resume     like good; the CDN cuts a request without Range at half, honours Range
norange    like good; the CDN cuts a request without Range at half, answers Range with 200
badrange   like good; the CDN answers Range with 206 for the wrong bytes (from 0)
endless    302 with X-Linked-Size; the CDN sends a chunked body that never ends
endless0   200 chunked body that never ends, no size announced anywhere
sizelie    302 with X-Linked-Size one more than the CDN's Content-Length
loop       302 to itself, forever
chain5     five redirects in all, then the file (allowed)
chain6     six redirects in all (one too many)
auth       401 without 'Authorization: Bearer <token>'; the CDN answers 400 if it gets one
stall      200, 1000 bytes, then silence (until the lifetime ends)
badlen     200 with a Content-Length that is not a number
e404       404 with a small body
e500       500 with a small body
"""


def count(key):
    with LOCK:
        STATS[key] = STATS.get(key, 0) + 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hostile/1"

    def log_message(self, fmt, *args):  # quiet unless asked
        if os.environ.get("HOSTILE_VERBOSE"):
            sys.stderr.write("hostile: " + (fmt % args) + "\n")

    # --- helpers
    def send_simple(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def redirect(self, location, headers=()):
        self.send_simple(302, b"", [("Location", location)] + list(headers))

    def linked(self, sha=None, size=None):
        return [("X-Linked-ETag", '"%s"' % (sha or SHA)),
                ("X-Linked-Size", str(len(DATA) if size is None else size)),
                ("ETag", '"%s"' % hashlib.sha1(DATA).hexdigest())]  # a git-style id: not a sha256

    def send_cut(self, code=200, headers=()):
        """Announce the whole file, send half of it, close the connection."""
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(DATA)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(DATA[: len(DATA) // 2])
        self.wfile.flush()
        self.close_connection = True

    def range_start(self):
        r = self.headers.get("Range")
        if not r or not r.startswith("bytes=") or not r.endswith("-"):
            return None
        try:
            return int(r[len("bytes="):-1])
        except ValueError:
            return None

    def send_file(self, headers=(), honour_range=True):
        start = self.range_start() if honour_range else None
        n = len(DATA)
        if start is not None and start >= n:
            self.send_simple(416, b"", [("Content-Range", "bytes */%d" % n)])
            return
        if start is not None:
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, n - 1, n))
            body = DATA[start:]
        else:
            self.send_response(200)
            body = DATA
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)

    def send_endless(self):
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = (DATA * 2)[:65536] if DATA else b"x" * 65536
        sent = 0
        try:
            # Bounded only so that a broken client cannot keep the test box busy.
            while time.time() < DEADLINE and sent < (1 << 30):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    # --- dispatch
    def do_GET(self):
        path = self.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        if path == "/stats":
            with LOCK:
                body = json.dumps({"counts": STATS, "cdn_saw_auth": len(CDN_SAW_AUTH)}).encode()
            return self.send_simple(200, body, [("Content-Type", "application/json")])
        if len(parts) >= 3 and parts[0] == "cdn":
            return self.cdn(parts[1], parts[-1])
        if len(parts) >= 3 and parts[0] == "hop":
            return self.hop(int(parts[1]), parts[-1])
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.hub(parts[1], parts[-1])
        self.send_simple(404, b"no such path\n")

    def hub(self, mode, name):
        count(mode)
        cdn = "%s/cdn/%s/%s" % (CDN, mode, name)
        if mode in ("good", "resume", "norange", "badrange"):
            return self.redirect(cdn, self.linked())
        if mode == "direct":
            return self.send_file([("ETag", '"%s"' % SHA.upper())])
        if mode == "badsha":
            return self.redirect("%s/cdn/good/%s" % (CDN, name),
                                 self.linked(sha=hashlib.sha256(b"something else").hexdigest()))
        if mode == "short":
            return self.send_cut()
        if mode == "endless":
            return self.redirect(cdn, self.linked())
        if mode == "endless0":
            return self.send_endless()
        if mode == "sizelie":
            return self.redirect("%s/cdn/good/%s" % (CDN, name), self.linked(size=len(DATA) + 1))
        if mode == "loop":
            return self.redirect(self.path)
        if mode == "chain5":
            return self.redirect("/hop/4/%s" % name, self.linked())
        if mode == "chain6":
            return self.redirect("/hop/5/%s" % name, self.linked())
        if mode == "auth":
            if self.headers.get("Authorization") != "Bearer " + TOKEN:
                return self.send_simple(401, b"token required\n")
            return self.redirect(cdn, self.linked())
        if mode == "stall":
            self.send_response(200)
            self.send_header("Content-Length", str(len(DATA)))
            self.end_headers()
            self.wfile.write(DATA[:1000])
            self.wfile.flush()
            while time.time() < DEADLINE:
                time.sleep(0.2)
            self.close_connection = True
            return
        if mode == "badlen":
            self.send_response(200)
            self.send_header("Content-Length", "12abc")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(DATA[:100])
            self.close_connection = True
            return
        if mode == "e404":
            return self.send_simple(404, b"Entry not found\n")
        if mode == "e500":
            return self.send_simple(500, b"Internal Error\n")
        self.send_simple(404, b"unknown mode\n")

    def hop(self, k, name):
        count("hop")
        if k <= 1:
            return self.redirect("%s/cdn/good/%s" % (CDN, name))
        return self.redirect("/hop/%d/%s" % (k - 1, name))

    def cdn(self, mode, name):
        count("cdn-" + mode)
        if self.headers.get("Authorization"):
            with LOCK:
                CDN_SAW_AUTH.append(mode)
            return self.send_simple(400, b"leaked Authorization header\n")
        has_range = self.range_start() is not None
        if mode in ("good", "auth"):
            return self.send_file()
        if mode == "resume":
            return self.send_file() if has_range else self.send_cut()
        if mode == "norange":
            return self.send_file(honour_range=False) if has_range else self.send_cut()
        if mode == "badrange":
            if has_range:
                n = len(DATA)
                self.send_response(206)
                self.send_header("Content-Range", "bytes 0-%d/%d" % (n - 1, n))
                self.send_header("Content-Length", str(n))
                self.end_headers()
                self.wfile.write(DATA)
                return
            return self.send_file()
        if mode == "endless":
            return self.send_endless()
        self.send_simple(404, b"unknown cdn mode\n")

    do_HEAD = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Clients that hang up mid-body are the point of this server.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def main():
    global DATA, SHA, HUB, CDN, DEADLINE
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", help="the file to serve (default: 300000 pseudo-random bytes)")
    ap.add_argument("--lifetime", type=float, default=120.0)
    a = ap.parse_args()
    if a.file:
        with open(a.file, "rb") as f:
            DATA = f.read()
    else:
        DATA = bytes((i * 2654435761 >> 13) & 0xFF for i in range(300000))
    SHA = hashlib.sha256(DATA).hexdigest()
    DEADLINE = time.time() + a.lifetime

    hub = Server(("127.0.0.1", 0), Handler)
    try:
        cdn = Server(("127.0.0.2", 0), Handler)
    except OSError:
        cdn = Server(("127.0.0.1", 0), Handler)
    HUB = "http://%s:%d" % hub.server_address[:2]
    CDN = "http://%s:%d" % cdn.server_address[:2]
    for s in (hub, cdn):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print(HUB, CDN, flush=True)
    while time.time() < DEADLINE:
        time.sleep(0.2)
    os._exit(0)  # daemon threads may still be writing: leave now


if __name__ == "__main__":
    main()
