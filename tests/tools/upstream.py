#!/usr/bin/env python3
"""A test upstream for awf-proxy: plain HTTP, HTTP over TLS, and a raw TCP echo, all on loopback.

Started by the integration tests as a subprocess. Every listener binds an ephemeral port and is
announced on stdout, one line each, then "ready":

    http 127.0.0.1 41234
    https 127.0.0.1 41235
    echo 127.0.0.1 41236
    ready

Routes (any method; HEAD answers like GET without the body):
    /small            100 bytes of the pattern
    /bytes/N          N bytes of the pattern, streamed in 64 KiB writes
    /chunked[/N]      N bytes (default 1000) sent with Transfer-Encoding: chunked, in 7 chunks
    /slow[/S]         waits S seconds (default 5) then answers "slow\n"
    /reset            closes the connection with a TCP RST instead of answering
    /echo             JSON: method, target, version, headers (in order, as received), body
    /status/N         answers status N (204 and 304 without a body)
    /upgrade          101 Switching Protocols when asked for an Upgrade, then echoes raw bytes
    /close            answers with Connection: close and closes
    /stats            JSON {"accepted", "silent", "spoke", "pending"}: connections accepted on
                      any listener, those closed before sending a byte, those that sent one
                      (the /stats requests left out), those that did neither yet
Every response carries X-Conn (the upstream's serial number for the TCP connection) and X-Req
(the request's index on it), so tests see keep-alive reuse from the upstream's side.
Expect: 100-continue is answered with an interim 100 before the body is read.

The echo listener echoes bytes; when the client half-closes it writes b"<eof>" and closes, so a
test can see that a half-close crossed the proxy and that the other direction kept working.

--bind ADDR binds ADDR instead of --host: a private address (10/8, 172.16/12, 192.168/16,
fc00::/7, loopback) of a network namespace a test built, such as the "internet" namespace of
test_e2e_netns.py. Never a public address.

The pattern is bytes(range(256)) cycled, offset by nothing: byte i is i % 256. Stops on SIGTERM.
Python 3 stdlib only.
"""

import argparse
import ipaddress
import json
import signal
import socket
import ssl
import struct
import sys
import threading
import time

PATTERN = bytes(range(256)) * 256  # 64 KiB


def pattern(n, offset=0):
    """The first n bytes of the pattern starting at offset (the tests import this too)."""
    out = bytearray()
    pos = offset % 256
    while len(out) < n:
        take = min(n - len(out), len(PATTERN) - pos)
        out += PATTERN[pos : pos + take]
        pos = 0
    return bytes(out)


class BadRequest(Exception):
    pass


class Conn:
    """One accepted connection with a small read buffer."""

    def __init__(self, sock, serial):
        self.sock = sock
        self.serial = serial
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def read_until(self, sep, limit=1 << 20):
        while sep not in self.buf:
            if len(self.buf) > limit:
                raise BadRequest("line too long")
            if not self.fill():
                return None
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise BadRequest("short body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, data):
        self.sock.sendall(data)


def read_head(conn):
    """Returns (method, target, version, [(name, value)]) or None at a clean EOF."""
    head = conn.read_until(b"\r\n\r\n")
    if head is None:
        if conn.buf:
            raise BadRequest("EOF inside a request head")
        return None
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest("bad request line")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest("bad header line")
        headers.append((name, value.strip()))
    return parts[0], parts[1], parts[2], headers


def header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def read_body(conn, headers):
    te = header(headers, "transfer-encoding")
    if te is not None and "chunked" in te.lower():
        body = b""
        while True:
            line = conn.read_until(b"\r\n")
            if line is None:
                raise BadRequest("EOF in chunked body")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers until the empty line
                    t = conn.read_until(b"\r\n")
                    if t is None or t == b"\r\n":
                        return body
            body += conn.read_exact(size)
            conn.read_exact(2)
    cl = header(headers, "content-length")
    if cl is not None:
        return conn.read_exact(int(cl))
    return b""


REASONS = {
    101: "Switching Protocols",
    200: "OK",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    500: "Internal Server Error",
}


def respond(conn, req_no, status, body=b"", extra=(), head_only=False, close=False, length=True):
    lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status"))]
    lines.append("X-Conn: %d" % conn.serial)
    lines.append("X-Req: %d" % req_no)
    lines.extend("%s: %s" % kv for kv in extra)
    if length and status not in (204, 304) and status >= 200:
        lines.append("Content-Length: %d" % len(body))
    if close:
        lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if not head_only and status not in (204, 304):
        data += body
    conn.send(data)


def serve_echo_bytes(conn):
    """Raw echo after an upgrade (and for the echo listener); <eof> marks the client's FIN."""
    if conn.buf:
        conn.send(conn.buf)
        conn.buf = b""
    while True:
        data = conn.sock.recv(65536)
        if not data:
            break
        conn.send(data)
    conn.send(b"<eof>")


def handle_request(conn, req_no, method, target, version, headers):
    """Returns False when the connection must close after this request."""
    expect = header(headers, "expect")
    if expect is not None and expect.lower() == "100-continue":
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = read_body(conn, headers)
    conn_hdr = (header(headers, "connection") or "").lower()
    keep = version == "HTTP/1.1" and "close" not in conn_hdr
    if version == "HTTP/1.0" and "keep-alive" in conn_hdr:
        keep = True
    head_only = method == "HEAD"
    path = target
    if "://" in path:  # absolute form reached us: record it, route on the path
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    path = path.split("?", 1)[0]
    segs = [s for s in path.split("/") if s]
    route = segs[0] if segs else ""
    arg = segs[1] if len(segs) > 1 else None
    ctype = (("Content-Type", "application/octet-stream"),)

    if route == "small":
        respond(conn, req_no, 200, pattern(100), ctype, head_only, not keep)
    elif route == "bytes":
        n = int(arg or "0")
        hdr = "HTTP/1.1 200 OK\r\nX-Conn: %d\r\nX-Req: %d\r\n" % (conn.serial, req_no)
        hdr += "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n" % n
        if not keep:
            hdr += "Connection: close\r\n"
        conn.send((hdr + "\r\n").encode())
        if not head_only:
            sent = 0
            while sent < n:
                take = min(65536, n - sent)
                conn.send(pattern(take, sent))
                sent += take
    elif route == "chunked":
        n = int(arg or "1000")
        hdr = "HTTP/1.1 200 OK\r\nX-Conn: %d\r\nX-Req: %d\r\n" % (conn.serial, req_no)
        hdr += "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n"
        if not keep:
            hdr += "Connection: close\r\n"
        conn.send((hdr + "\r\n").encode())
        if not head_only:
            data = pattern(n)
            step = max(1, (n + 6) // 7)
            for i in range(0, n, step):
                piece = data[i : i + step]
                conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
    elif route == "slow":
        time.sleep(float(arg or "5"))
        respond(conn, req_no, 200, b"slow\n", (("Content-Type", "text/plain"),), head_only,
                not keep)
    elif route == "reset":
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False
    elif route == "echo":
        doc = {
            "method": method,
            "target": target,
            "version": version,
            "headers": [[k, v] for k, v in headers],
            "body": body.decode("latin-1"),
            "conn": conn.serial,
        }
        respond(conn, req_no, 200, json.dumps(doc).encode(),
                (("Content-Type", "application/json"),), head_only, not keep)
    elif route == "status":
        status = int(arg or "200")
        extra = (("ETag", '"v1"'),) if status == 304 else ()
        respond(conn, req_no, status, b"status %d\n" % status, extra, head_only, not keep)
    elif route == "upgrade":
        if header(headers, "upgrade") is None:
            respond(conn, req_no, 400, b"no upgrade asked\n", (), head_only, True)
            return False
        conn.send(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n"
            b"X-Conn: %d\r\n\r\n" % (header(headers, "upgrade").encode("latin-1"), conn.serial)
        )
        serve_echo_bytes(conn)
        return False
    elif route == "stats":
        with SERIAL_LOCK:
            STATS["stats"] += 1
            doc = dict(STATS)
        doc["pending"] = doc["accepted"] - doc["silent"] - doc["spoke"]  # not yet decided
        doc["spoke"] -= doc.pop("stats")  # the /stats requests themselves do not count
        respond(conn, req_no, 200, json.dumps(doc).encode(),
                (("Content-Type", "application/json"),), head_only, not keep)
    elif route == "close":
        respond(conn, req_no, 200, b"bye\n", (), head_only, True)
        return False
    else:
        respond(conn, req_no, 404, b"no such route\n", (), head_only, not keep)
    return keep


def serve_http(sock, serial):
    conn = Conn(sock, serial)
    req_no = 0
    try:
        while True:
            req = read_head(conn)
            if req is None:
                break
            req_no += 1
            if not handle_request(conn, req_no, *req):
                break
    except BadRequest as e:
        try:
            respond(conn, req_no, 400, ("bad request: %s\n" % e).encode(), (), close=True)
        except OSError:
            pass
    except (OSError, ValueError, ssl.SSLError):
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass


def serve_echo(sock, serial):
    conn = Conn(sock, serial)
    try:
        serve_echo_bytes(conn)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        sock.close()


SERIAL = [0]
SERIAL_LOCK = threading.Lock()
# Connections accepted, and of those: closed by the peer before sending a byte ("silent") or
# that sent at least one ("spoke"). Lets a test prove no byte of a denied tunnel arrived.
STATS = {"accepted": 0, "silent": 0, "spoke": 0, "stats": 0}


class Listener(threading.Thread):
    def __init__(self, kind, host, handler, tls_ctx=None):
        super().__init__(daemon=True)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.kind, self.host, self.handler, self.tls_ctx = kind, host, handler, tls_ctx
        self.port = self.sock.getsockname()[1]

    def run(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with SERIAL_LOCK:  # one numbering across listeners: X-Conn 1 means "first ever"
                SERIAL[0] += 1
                STATS["accepted"] += 1
                serial = SERIAL[0]
            threading.Thread(target=self.wrap_and_serve, args=(s, serial), daemon=True).start()

    def wrap_and_serve(self, s, serial):
        try:  # every client here speaks first; wait for its first byte or its EOF
            s.settimeout(120)
            first = s.recv(1, socket.MSG_PEEK)
            s.settimeout(None)
        except OSError:
            first = b""
        with SERIAL_LOCK:
            STATS["spoke" if first else "silent"] += 1
        if not first:
            s.close()
            return
        if self.tls_ctx is not None:
            try:
                s.settimeout(30)
                s = self.tls_ctx.wrap_socket(s, server_side=True)
                s.settimeout(None)
            except (OSError, ssl.SSLError):
                s.close()
                return
        self.handler(s, serial)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    ap.add_argument("--bind", metavar="ADDR",
                    help="private address to bind instead of --host (a test's network namespace)")
    ap.add_argument("--cert", help="PEM certificate: also serve HTTP over TLS")
    ap.add_argument("--key", help="PEM key for --cert")
    ap.add_argument("--no-echo", action="store_true", help="no raw echo listener")
    args = ap.parse_args()
    if args.bind is not None:
        try:
            addr = ipaddress.ip_address(args.bind)
        except ValueError:
            sys.exit("upstream.py: --bind %s: not an IP address" % args.bind)
        # Private addresses only: a namespace's veth, never a public interface.
        if not (addr.is_private or addr.is_loopback) or addr.is_unspecified:
            sys.exit("upstream.py: --bind %s: only private addresses" % args.bind)
        args.host = args.bind
    elif not (args.host.startswith("127.") or args.host == "::1"):
        sys.exit("upstream.py: only loopback addresses")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    listeners = [Listener("http", args.host, serve_http)]
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["http/1.1"])
        listeners.append(Listener("https", args.host, serve_http, ctx))
    if not args.no_echo:
        listeners.append(Listener("echo", args.host, serve_echo))
    for li in listeners:
        li.start()
        print("%s %s %d" % (li.kind, li.host, li.port))
    print("ready", flush=True)
    while not stop.wait(0.2):
        pass
    for li in listeners:
        li.sock.close()


if __name__ == "__main__":
    main()
