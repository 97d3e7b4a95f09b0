"""The parent proxy (YAML `parent`, squid.conf `cache_peer ... parent`): plain HTTP goes to it in
absolute form on pooled keep-alive connections, tunnels (CONNECT, intercepted TLS) ask it for a
CONNECT first and keep the ClientHello check, a refusal is a 502 with the parent's status
logged, and the parent is dialled without the private-address check (it sits on loopback here
while loopback targets stay denied). Everything on loopback."""

import os
import select
import socket
import socketserver
import ssl
import threading
import time
import unittest

import awf
from awf import ALLOWED, OTHER

# %<Hs: the parent's answer to our CONNECT when it refused one.
FMT = "logformat=%>Hs %<Hs %Sh/%<a:%<p %rm %ru"
TLS_FAILURES = (ConnectionError, ssl.SSLError, OSError)


class KeepAliveParent:
    """An HTTP forward proxy on loopback that keeps client connections open: absolute-form
    requests are answered with Content-Length (the upstream asked with HTTP/1.0 and read to its
    close), CONNECT gets `refuse` (a status) or 200 and a relay to 127.0.0.1:port.
    .seen: [(connection number, method, target)]."""

    def __init__(self, tc, refuse=None):
        self.seen, self.lock, self.conns = [], threading.Lock(), 0
        self.refuse = refuse
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                with outer.lock:
                    outer.conns += 1
                    n = outer.conns
                try:
                    outer._serve(self.request, n)
                except OSError:
                    pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        tc.addCleanup(self.close)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, c, n):
        c.settimeout(awf.WAIT)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ")
            with self.lock:
                self.seen.append((n, method, target))
            if method == "CONNECT":
                self._connect(c, target, buf)
                return
            hostport = target.split("/")[2]
            port = int(hostport.rsplit(":", 1)[1]) if ":" in hostport else 80
            path = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
            up = socket.create_connection(("127.0.0.1", port), awf.WAIT)
            up.sendall(("%s %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (method, path, hostport))
                       .encode("latin-1"))
            resp = b""
            while True:
                d = up.recv(65536)
                if not d:
                    break
                resp += d
            up.close()
            rhead, _, body = resp.partition(b"\r\n\r\n")
            rlines = rhead.split(b"\r\n")
            keep = [l for l in rlines[1:] if l.split(b":")[0].strip().lower() not in
                    (b"connection", b"content-length", b"transfer-encoding", b"keep-alive")]
            out = b"\r\n".join([b"HTTP/1.1" + rlines[0][8:]] + keep +
                               [b"Content-Length: %d" % len(body)]) + b"\r\n\r\n" + body
            c.sendall(out)

    def _connect(self, c, target, rest):
        if self.refuse:
            c.sendall(b"HTTP/1.1 %d Nope\r\nContent-Length: 0\r\n\r\n" % self.refuse)
            c.close()
            return
        up = socket.create_connection(("127.0.0.1", int(target.rsplit(":", 1)[1])), awf.WAIT)
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            up.sendall(rest)
        socks = [c, up]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], awf.WAIT)
                if not r:
                    return
                for s in r:
                    d = s.recv(65536)
                    if not d:
                        return
                    (up if s is c else c).sendall(d)
        finally:
            up.close()
            c.close()

    def targets(self):
        with self.lock:
            return [(m, t) for _, m, t in self.seen]


class ParentTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=True)
        self.fmt_log = os.path.join(self.tmp, "fmt.log")

    def start(self, parent, extra="", private_ok=False):
        """awf-proxy with a YAML policy: ALLOWED, the upstream's ports, parent; loopback
        targets are denied unless private_ok."""
        text, _ = awf.policy_yaml(allow=[ALLOWED], extra=(
            "threads: 1\nports: [\"%d\", \"%d\"]\nparent: \"127.0.0.1:%d\"\n%s%s"
            % (self.up.http, self.up.https, parent.port,
               "addresses:\n  allow: [\"127.0.0.0/8\"]\n" if private_ok else "", extra)))
        return self.proxy("-p", self.write("policy.yaml", text), "--access-log",
                          "%s:%s" % (FMT, self.fmt_log))

    def fmt_lines(self, n):
        lines = []
        for _ in range(100):
            with open(self.fmt_log) as f:
                lines = [l for l in f.read().split("\n") if l]
            if len(lines) >= n:
                break
            time.sleep(0.05)
        self.assertEqual(len(lines), n, lines)
        return lines

    def test_http_absolute_form_pooled_and_not_address_checked(self):
        parent = KeepAliveParent(self)
        px = self.start(parent)
        url = "http://%s:%d/small" % (ALLOWED, self.up.http)
        for _ in range(2):
            r = self.curl(url, proxy=px.url)
            self.assertEqual((r.code, r.body), (200, awf.pattern(100)))
        # Both requests on one pooled connection to the parent, in absolute form.
        with parent.lock:
            self.assertEqual(parent.seen, [(1, "GET", url), (1, "GET", url)])
        want = "200 200 FIRSTUP_PARENT/127.0.0.1:%d GET %s" % (parent.port, url)
        self.assertEqual(self.fmt_lines(2), [want, want])

    def test_connect_through_parent(self):
        parent = KeepAliveParent(self)
        px = self.start(parent)
        r = self.curl("https://%s:%d/small" % (ALLOWED, self.up.https), "-k", proxy=px.url)
        self.assertEqual((r.code, r.connect_code, r.body), (200, 200, awf.pattern(100)))
        self.assertEqual(parent.targets(), [("CONNECT", "%s:%d" % (ALLOWED, self.up.https))])
        (line,) = self.fmt_lines(1)
        self.assertRegex(line, r"^200 \S+ FIRSTUP_PARENT/127\.0\.0\.1:%d CONNECT %s:%d$"
                         % (parent.port, ALLOWED, self.up.https))

    def test_parent_refusal_is_502_with_its_status_logged(self):
        parent = KeepAliveParent(self, refuse=403)
        px = self.start(parent)
        r = self.curl("https://%s:%d/small" % (ALLOWED, self.up.https), "-k", proxy=px.url)
        self.assertEqual(r.connect_code, 502)
        (line,) = self.fmt_lines(1)
        self.assertEqual(line, "502 403 FIRSTUP_PARENT/127.0.0.1:%d CONNECT %s:%d"
                         % (parent.port, ALLOWED, self.up.https))

    def test_parent_down_is_503(self):
        closed = awf.closed_port()
        text, _ = awf.policy_yaml(allow=[ALLOWED], extra="ports: [\"%d\"]\nparent: \"127.0.0.1:%d\"\n"
                                  % (self.up.http, closed))
        px = self.proxy("-p", self.write("policy.yaml", text))
        r = self.curl("http://%s:%d/small" % (ALLOWED, self.up.http), proxy=px.url)
        self.assertEqual(r.code, 503)
        self.assertEqual(r.header("X-Squid-Error"), "ERR_CONNECT_FAIL 111")

    def test_sni_checked_before_anything_crosses_the_parent_tunnel(self):
        parent = KeepAliveParent(self)
        px = self.start(parent)
        s = awf.tunnel(px, "%s:%d" % (ALLOWED, self.up.https))
        self.addCleanup(s.close)
        with self.assertRaises(TLS_FAILURES):
            tls = awf.TlsClient(s, OTHER, verify=False)
            tls.send(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
            tls.response()
        s.close()
        (e,) = px.entries(1)
        awf.assert_fields(self, e, method="CONNECT", tag="TCP_DENIED", status=(403, 200))
        # The parent opened the tunnel, but no byte of the ClientHello went through it.
        self.assertEqual(parent.targets(), [("CONNECT", "%s:%d" % (ALLOWED, self.up.https))])
        self.assertEqual(self.up.stats()["spoke"], 0)

    def test_intercepted_tls_through_parent(self):
        parent = KeepAliveParent(self)
        text, _ = awf.policy_yaml(allow=[ALLOWED], extra=(
            "threads: 1\nlisten:\n  - {address: \"127.0.0.1:0\", intercept_port: %d}\n"
            "ports: [\"%d\"]\nparent: \"127.0.0.1:%d\"\n"
            % (self.up.https, self.up.https, parent.port)))
        px = self.proxy("-p", self.write("policy.yaml", text), listen=())
        s = awf.connect(px)
        self.addCleanup(s.close)
        tls = awf.TlsClient(s, ALLOWED)
        tls.send(b"GET /small HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                 % ALLOWED.encode())
        self.assertEqual(tls.response(), (200, awf.pattern(100)))
        s.close()
        (e,) = px.entries(1)
        awf.assert_fields(self, e, method="CONNECT", tag="TCP_TUNNEL", hier="FIRSTUP_PARENT",
                          server="127.0.0.1", server_port=str(parent.port))
        self.assertEqual(parent.targets(), [("CONNECT", "%s:%d" % (ALLOWED, self.up.https))])


if __name__ == "__main__":
    unittest.main(verbosity=2)
