"""The three built-in access-log formats side by side (firewall_detailed, squid, audit_jsonl) and
a custom logformat, for forwarded, tunnelled, denied and failed transactions (SPEC §6)."""

import os
import re
import socket
import time
import unittest

import awf
from awf import ALLOWED, assert_fields

ALL = ("firewall_detailed", "squid", "audit_jsonl")


def utc_stamp(ts):
    """firewall_detailed's "%ts.%03tu" as audit_jsonl's "%{%Y-%m-%dT%H:%M:%S}tg.%03tuZ"."""
    sec, ms = ts.split(".")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(sec))) + "." + ms + "Z"


class LogFormatsTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=True)
        self.cert, _ = awf.certs()
        self.px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http,
                                                                      self.up.https]),
                             logs=ALL)

    def run_mix(self):
        """Four transactions: GET 200, CONNECT 200, GET 403, CONNECT 403."""
        hp = "%s:%d" % (ALLOWED, self.up.http)
        tls_hp = "%s:%d" % (ALLOWED, self.up.https)
        r = self.curl("http://%s/small?q=secret" % hp, "-A", "Mozilla/5.0 (X11)", proxy=self.px)
        self.assertEqual(r.code, 200, r)
        r = self.curl("https://%s/small" % tls_hp, "--cacert", self.cert, proxy=self.px)
        self.assertEqual(r.code, 200, r)
        self.assertDenied(self.curl("http://evil.test/p?x=1", proxy=self.px))
        self.assertDenied(self.curl("https://evil.test:%d/" % self.up.https, "-k", proxy=self.px))
        return hp, tls_hp

    def test_all_formats_agree(self):
        hp, tls_hp = self.run_mix()
        fd = self.px.entries(4, "firewall_detailed")
        sq = self.px.entries(4, "squid")
        js = self.px.entries(4, "audit_jsonl")
        evil_hp = "evil.test:%d" % self.up.https
        want = [
            # method, status, tag, hier, url, host, server
            ("GET", 200, "TCP_MISS", "HIER_DIRECT", "http://%s/small?" % hp, hp,
             "127.0.0.1:%d" % self.up.http),
            ("CONNECT", 200, "TCP_TUNNEL", "HIER_DIRECT", tls_hp, tls_hp,
             "127.0.0.1:%d" % self.up.https),
            ("GET", 403, "TCP_DENIED", "HIER_NONE", "http://evil.test/p?", "evil.test", "-:-"),
            ("CONNECT", 403, "TCP_DENIED", "HIER_NONE", evil_hp, evil_hp, "-:-"),
        ]
        for f, s, j, (method, status, tag, hier, url, host, server) in zip(fd, sq, js, want):
            assert_fields(self, f, method=method, status=status, tag=tag, hier=hier, url=url,
                          host=host, client="127.0.0.1", version="1.1")
            self.assertEqual("%s:%s" % (f["server"], f["server_port"]), server, f["line"])
            assert_fields(self, s, method=method, status=status, tag=tag, hier=hier, url=url,
                          client="127.0.0.1", user="-", ts=f["ts"],
                          server=server.rsplit(":", 1)[0])
            if status == 200 and method == "GET":
                self.assertGreaterEqual(s["bytes"], 100, s["line"])  # at least the body
                self.assertEqual(s["mime"], "application/octet-stream", s["line"])
            if method == "CONNECT" and status == 200:
                self.assertGreater(s["bytes"], 0, s["line"])  # the TLS bytes sent back
            if status == 403:
                self.assertGreater(s["bytes"], 0, s["line"])  # the error page
                self.assertRegex(s["mime"], r"^text/(html|plain)", s["line"])
            assert_fields(self, j, client="127.0.0.1", host=host, dest=server, method=method,
                          status=status, decision=tag, url=url,
                          _schema="audit/v1", timestamp=utc_stamp(f["ts"]))
        assert_fields(self, fd[0], ua="Mozilla/5.0 (X11)")
        # Logged when the tunnel ends, from the request head it kept (compacted) until then.
        assert_fields(self, fd[1], ua=re.compile(r"^curl/"))
        assert_fields(self, fd[2], ua=re.compile(r"^curl/"))
        for e in fd + sq:
            self.assertNotIn("secret", e["line"])

    def test_awf_version_in_schema(self):
        self.px.stop()
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http]),
                        "--set", "awf_version=7.3", logs=("audit_jsonl",))
        self.assertDenied(self.curl("http://evil.test/", proxy=px))
        lines = px.wait_log(1, "audit_jsonl")
        j = awf.parse_jsonl(self, lines[-1])
        assert_fields(self, j, _schema="audit/v7.3", status=403, decision="TCP_DENIED")

    def test_custom_logformat(self):
        self.px.stop()
        fmt = "logformat=%rm %>Hs %03>Hs %Ss/%Sh %ru %{Host}>h %>a %<a %<p %rv %un %% %>rd end"
        path = os.path.join(self.tmp, "custom.log")
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http]),
                        "--access-log", "%s:%s" % (fmt, path), logs=())
        hp = "%s:%d" % (ALLOWED, self.up.http)
        self.assertEqual(self.curl("http://%s/small" % hp, proxy=px).code, 200)
        self.assertDenied(self.curl("http://evil.test/x", proxy=px))
        self.assertEqual(px.stop(), 0)
        with open(path) as f:
            lines = f.read().split("\n")
        self.assertEqual(lines[-1], "")
        self.assertEqual(lines[:-1], [
            "GET 200 200 TCP_MISS/HIER_DIRECT http://%s/small %s 127.0.0.1 127.0.0.1 %d 1.1 - %% "
            "%s end" % (hp, hp, self.up.http, ALLOWED),
            "GET 403 403 TCP_DENIED/HIER_NONE http://evil.test/x evil.test 127.0.0.1 - - 1.1 - % "
            "evil.test end",
        ])

    def test_time_codes(self):
        self.px.stop()
        fmt = "logformat=%ts.%03tu|%tr|%6tr|%{%Y}tg|%tl"
        path = os.path.join(self.tmp, "time.log")
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http]),
                        "--access-log", "%s:%s" % (fmt, path), logs=())
        self.assertDenied(self.curl("http://evil.test/", proxy=px))
        self.assertEqual(px.stop(), 0)
        with open(path) as f:
            line = f.read().rstrip("\n")
        parts = line.split("|")
        self.assertEqual(len(parts), 5, line)
        self.assertRegex(parts[0], r"^\d{10}\.\d{3}$")
        self.assertRegex(parts[1], r"^\d+$")
        self.assertRegex(parts[2], r"^ {0,5}\d+$")
        self.assertEqual(len(parts[2]), 6)
        self.assertEqual(parts[3], time.strftime("%Y", time.gmtime(int(parts[0].split(".")[0]))))
        # %tl: Squid's local time, "dd/Mon/yyyy:hh:mm:ss +zzzz".
        self.assertRegex(parts[4], r"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}$")

    def test_log_to_stdout(self):
        self.px.stop()
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http]),
                        "--access-log", "-", logs=())
        self.assertDenied(self.curl("http://evil.test/", proxy=px))
        m = px.wait_line(r"TCP_DENIED", stream="out")
        self.assertIsNotNone(m, "no log line on stdout")
        e = awf.parse_fd(self, [l for l in px.lines_out if "TCP_DENIED" in l][0])
        assert_fields(self, e, status=403, method="GET", url="http://evil.test/")

    def test_unicode_line_breakers_escaped(self):
        """A User-Agent carrying U+2028, U+2029, NEL (U+0085), a lone 0x85 byte and a bidi
        override: every format still has one record per line for a reader that splits on
        Unicode line boundaries (Python's splitlines), and the JSON line parses."""
        self.px.stop()
        path = os.path.join(self.tmp, "custom.log")
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http]),
                        "--access-log", "logformat=%'{User-Agent}>h \"%{User-Agent}>h\":" + path,
                        logs=ALL)
        ua = "a\u2028b\u2029c\u0085d\u202ee".encode() + b"\x85f"
        for _ in range(2):
            r = awf.raw_request(px, b"GET http://evil.test/ HTTP/1.1\r\nHost: evil.test\r\n"
                                b"User-Agent: " + ua + b"\r\nConnection: close\r\n\r\n")
            self.assertEqual(r.status, 403, r)
        px.entries(2, "firewall_detailed")
        px.entries(2, "squid")
        for fmt in ALL:
            with open(px.log_paths[fmt], "rb") as f:
                text = f.read().decode("utf-8")  # strict: every line is valid UTF-8
            self.assertEqual(len(text.splitlines()), 2, (fmt, text))
        with open(px.log_paths["audit_jsonl"], encoding="utf-8") as f:
            for line in f.read().splitlines():
                awf.parse_jsonl(self, line)
        with open(px.log_paths["firewall_detailed"], encoding="utf-8") as f:
            self.assertIn('"a\\xE2\\x80\\xA8b\\xE2\\x80\\xA9c\\xC2\\x85d\\xE2\\x80\\xAEe\\x85f"',
                          f.read())
        px.stop()
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self.assertEqual(text.splitlines(), [
            'a%E2%80%A8b%E2%80%A9c%C2%85d%E2%80%AEe%85f '
            '"a\\xE2\\x80\\xA8b\\xE2\\x80\\xA9c\\xC2\\x85d\\xE2\\x80\\xAEe\\x85f"'] * 2)

    def test_hosts_spelled_as_squid(self):
        """Hosts and URLs as Squid 5.7 logs them (measured; test_differential compares with
        Squid itself): the canonical host, the CONNECT target as a CONNECT's Host, "-" for a
        request without a Host header, and a connection closed with no request."""
        self.px.stop()
        px = self.proxy(*awf.allow_loopback_args(ALLOWED, ports=[self.up.http, self.up.echo]),
                        logs=ALL)
        port, echo = self.up.http, self.up.echo
        sent = [  # (request line and headers, status)
            (b"GET http://%s:%d/small?k=v HTTP/1.1\r\nHost: %s:%d\r\n" % (
                ALLOWED.upper().encode(), port, ALLOWED.upper().encode(), port), 200),
            (b"GET http://%s.:%d/small HTTP/1.1\r\nHost: %s.:%d\r\n" % (
                ALLOWED.encode(), port, ALLOWED.encode(), port), 200),
            (b"GET http://%s:%d/small HTTP/1.1\r\n" % (ALLOWED.encode(), port), 200),  # no Host
            (b"GET http://EVIL.test:80/a HTTP/1.1\r\nHost: EVIL.test:80\r\n", 403),
            (b"GET http://2130706433:%d/a HTTP/1.1\r\nHost: 2130706433:%d\r\n" % (
                port, port), 403),
            (b"GET http://[0:0::1]:%d/a HTTP/1.1\r\nHost: [0:0::1]:%d\r\n" % (port, port), 403),
            (b"CONNECT %s.:%d HTTP/1.1\r\nHost: other.test:443\r\n" % (
                ALLOWED.upper().encode(), echo), 200),
        ]
        for i, (head, status) in enumerate(sent):
            px.wait_log(i)  # one at a time: lines are written as transactions end
            s = awf.connect(px)
            s.sendall(head + b"User-Agent: t\r\nConnection: close\r\n\r\n")
            r = awf.Reader(s).response(head_only=head.startswith(b"CONNECT"))
            s.close()
            self.assertEqual(r.status, status, (head, r))
        px.wait_log(len(sent))
        # No request: a partial head, then the client leaves (a loopback connection closed
        # without a byte is a health probe, counted and not logged; Squid logs both alike).
        s = awf.connect(px)
        s.sendall(b"GET http://" + ALLOWED.encode())
        s.shutdown(socket.SHUT_WR)
        awf.recv_all(s)
        s.close()
        hp, ehp = "%s:%d" % (ALLOWED, port), "%s:%d" % (ALLOWED, echo)
        want = [  # (Host field, URL)
            (hp, "http://%s/small?" % hp), (hp, "http://%s/small" % hp),
            ("-", "http://%s/small" % hp),
            ("evil.test", "http://evil.test/a"),
            ("127.0.0.1:%d" % port, "http://127.0.0.1:%d/a" % port),
            ("%%5B::1%%5D:%d" % port, "http://[::1]:%d/a" % port),
            (ehp, ehp),
        ]
        fd = px.entries(len(want) + 1, "firewall_detailed")
        js = px.entries(len(want) + 1, "audit_jsonl")
        sq = px.entries(len(want) + 1, "squid")
        for f, j, s, (host, url) in zip(fd, js, sq, want):
            assert_fields(self, f, host=host, url=url)
            # Inside JSON quotes Squid leaves the brackets alone.
            assert_fields(self, j, host=host.replace("%5B", "[").replace("%5D", "]"), url=url)
            assert_fields(self, s, url=url)
        no_req = "%s:%s - -:- 0.0 - 0 NONE_NONE:HIER_NONE error:transaction-end-before-headers" \
                 ' "-"' % (fd[-1]["client"], fd[-1]["client_port"])
        self.assertTrue(fd[-1]["line"].endswith(no_req), fd[-1]["line"])
        assert_fields(self, js[-1], host="-", dest="-:-", method="-", status=0,
                      decision="NONE_NONE", url="error:transaction-end-before-headers")
        assert_fields(self, sq[-1], elapsed=0, tag="NONE_NONE", status=0, bytes=0, method="-",
                      url="error:transaction-end-before-headers", hier="HIER_NONE",
                      server="-", mime="-")


if __name__ == "__main__":
    unittest.main(verbosity=2)
