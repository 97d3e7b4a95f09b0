"""Policy denials through the running proxy: host, port, raw IP, private addresses after
resolution, blocklist, Host header mismatch. Each answers 403 with X-Squid-Error
ERR_ACCESS_DENIED 0, logs TCP_DENIED:HIER_NONE, and sends nothing upstream (SPEC §3, §5)."""

import re
import unittest

import awf
from awf import ALLOWED, OTHER, assert_fields


class DenyTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=True)
        self.cert, _ = awf.certs()

    def start(self, *extra, **kw):
        args = awf.allow_loopback_args(ALLOWED, ports=[self.up.http, self.up.https]) + list(extra)
        self.px = self.proxy(*args, **kw)
        return self.px

    def assertDeniedLine(self, e, method, url, host, ua=re.compile(r"^curl/\d")):
        assert_fields(self, e, client="127.0.0.1", host=host, server="-", server_port="-",
                      version="1.1", method=method, status=403, tag="TCP_DENIED",
                      hier="HIER_NONE", url=url, ua=ua)

    def assertUpstreamUntouched(self):
        # The upstream numbers its connections; a fresh direct request being the first proves
        # nothing reached it before.
        r = self.curl("http://127.0.0.1:%d/small" % self.up.http)
        self.assertEqual(r.header("X-Conn"), "1", "something reached the upstream")

    def test_denied_host_forward(self):
        self.start()
        url = "http://evil.test:%d/small" % self.up.http
        r = self.curl(url, proxy=self.px)
        self.assertDenied(r)
        self.assertIn(b"evil.test", r.body)  # the body names the host
        (e,) = self.px.entries(1)
        self.assertDeniedLine(e, "GET", url, "evil.test:%d" % self.up.http)
        self.assertUpstreamUntouched()

    def test_denied_host_connect(self):
        self.start()
        r = self.curl("https://evil.test:%d/small" % self.up.https, "--cacert", self.cert,
                      proxy=self.px)
        self.assertNotEqual(r.rc, 0)
        self.assertDenied(r)
        (e,) = self.px.entries(1)
        hp = "evil.test:%d" % self.up.https
        self.assertDeniedLine(e, "CONNECT", hp, hp)
        self.assertUpstreamUntouched()

    def test_denied_port(self):
        self.start()
        # allowed.test is fine but the echo port is not in --allow-ports.
        hp = "%s:%d" % (ALLOWED, self.up.echo)
        r = self.curl("http://%s/small" % hp, proxy=self.px)
        self.assertDenied(r)
        r2 = self.curl("https://%s/small" % hp, "--cacert", self.cert, proxy=self.px)
        self.assertDenied(r2)
        e1, e2 = self.px.entries(2)
        self.assertDeniedLine(e1, "GET", "http://%s/small" % hp, hp)
        self.assertDeniedLine(e2, "CONNECT", hp, hp)

    def test_denied_raw_ip(self):
        self.start()
        # curl rewrites numeric hosts to dotted quads, so the odd inet_aton spellings go over a
        # raw socket as written.
        spellings = ("127.0.0.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.1")
        for host in spellings:
            with self.subTest(host=host):
                hp = ("%s:%d" % (host, self.up.http)).encode()
                r = awf.raw_request(self.px, b"GET http://%s/small HTTP/1.1\r\nHost: %s\r\n"
                                    b"User-Agent: raw\r\n\r\n" % (hp, hp))
                self.assertEqual(r.status, 403, r)
                self.assertEqual(r.header("X-Squid-Error"), "ERR_ACCESS_DENIED 0")
        r = self.curl("https://127.0.0.1:%d/small" % self.up.https, "-k", proxy=self.px)
        self.assertDenied(r)
        r = self.curl("http://[::1]:%d/small" % self.up.http, proxy=self.px)
        self.assertDenied(r)
        entries = self.px.entries(len(spellings) + 2)
        # Logged as Squid spells them: every spelling as the dotted quad, an IPv6 Host with
        # Squid's %5B %5D outside quotes (its URL keeps the brackets).
        for e, host in zip(entries, spellings):
            hp = "127.0.0.1:%d" % self.up.http
            self.assertDeniedLine(e, "GET", "http://%s/small" % hp, hp, ua="raw")
        hp = "127.0.0.1:%d" % self.up.https
        self.assertDeniedLine(entries[-2], "CONNECT", hp, hp)
        self.assertDeniedLine(entries[-1], "GET", "http://[::1]:%d/small" % self.up.http,
                              "%%5B::1%%5D:%d" % self.up.http)
        self.assertUpstreamUntouched()

    def test_raw_ip_allowlisted_passes(self):
        self.start("--allow-domains", "127.0.0.1")
        url = "http://127.0.0.1:%d/small" % self.up.http
        r = self.curl(url, proxy=self.px)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        (e,) = self.px.entries(1)
        assert_fields(self, e, status=200, tag="TCP_MISS", url=url)

    def test_private_address_after_resolution(self):
        # private.test is allowed by name but resolves to 127.0.0.2, a loopback (private)
        # address outside the only range re-opened here (127.0.0.1/32); the proxy must not dial
        # it. (A loopback address stands in for 10.x: test traffic never leaves the machine.)
        self.px = self.proxy("--allow-domains", ALLOWED + ",private.test",
                             "--allow-ranges", "127.0.0.1/32",
                             hosts={ALLOWED: "127.0.0.1", "private.test": "127.0.0.2"})
        url = "http://private.test/small"
        r = self.curl(url, proxy=self.px)
        self.assertDenied(r)
        r2 = self.curl("https://private.test/", "-k", proxy=self.px)
        self.assertDenied(r2)
        e1, e2 = self.px.entries(2)
        assert_fields(self, e1, method="GET", status=403, tag="TCP_DENIED", url=url,
                      host="private.test", server="-")
        assert_fields(self, e2, method="CONNECT", status=403, tag="TCP_DENIED",
                      url="private.test:443", host="private.test:443", server="-")

    def test_loopback_address_needs_allow_ranges(self):
        up = self.up
        px = self.proxy("--allow-domains", ALLOWED, "--allow-ports", str(up.http))
        url = "http://%s:%d/small" % (ALLOWED, up.http)
        r = self.curl(url, proxy=px)
        self.assertDenied(r)
        (e,) = px.entries(1)
        self.assertDeniedLine(e, "GET", url, "%s:%d" % (ALLOWED, up.http))
        self.assertUpstreamUntouched()

    def test_disguised_loopback_addresses(self):
        # Without --allow-ranges: an IPv4-mapped IPv6 address is checked as the IPv4 it maps,
        # and 0.0.0.0 (which the kernel would connect to this host) is denied too.
        hosts = {"mapped.test": "::ffff:127.0.0.1", "zero.test": "0.0.0.0", "lo.test": "127.0.0.1"}
        px = self.proxy("--allow-domains", ",".join(hosts), "--allow-ports", str(self.up.http),
                        hosts=hosts)
        for name in hosts:
            with self.subTest(name=name):
                self.assertDenied(self.curl("http://%s:%d/small" % (name, self.up.http),
                                            proxy=px))
        for e, name in zip(px.entries(len(hosts)), hosts):
            hp = "%s:%d" % (name, self.up.http)
            self.assertDeniedLine(e, "GET", "http://%s/small" % hp, hp)
        self.assertUpstreamUntouched()

    def test_allow_ranges_single_address(self):
        hosts = {"one.test": "127.0.0.1", "two.test": "127.0.0.2"}
        px = self.proxy("--allow-domains", "one.test,two.test", "--allow-ranges", "127.0.0.1/32",
                        "--allow-ports", str(self.up.http), hosts=hosts)
        r = self.curl("http://two.test:%d/small" % self.up.http, proxy=px)
        self.assertDenied(r)
        r = self.curl("http://one.test:%d/small" % self.up.http, proxy=px)
        self.assertEqual(r.code, 200, r)
        e1, e2 = px.entries(2)
        hp = "two.test:%d" % self.up.http
        self.assertDeniedLine(e1, "GET", "http://%s/small" % hp, hp)
        assert_fields(self, e2, status=200, tag="TCP_MISS", server="127.0.0.1")

    def test_blocklist(self):
        self.start("--block-domains", "no." + ALLOWED,
                   hosts={ALLOWED: "127.0.0.1", "no." + ALLOWED: "127.0.0.1",
                          "yes." + ALLOWED: "127.0.0.1"})
        ok = self.curl("http://yes.%s:%d/small" % (ALLOWED, self.up.http), proxy=self.px)
        self.assertEqual(ok.code, 200, ok)
        url = "http://no.%s:%d/small" % (ALLOWED, self.up.http)
        self.assertDenied(self.curl(url, proxy=self.px))
        e1, e2 = self.px.entries(2)
        assert_fields(self, e1, status=200, tag="TCP_MISS")
        self.assertDeniedLine(e2, "GET", url, "no.%s:%d" % (ALLOWED, self.up.http))

    def test_host_header_must_match_absolute_uri(self):
        self.start("--allow-domains", OTHER)
        r = awf.raw_request(self.px, b"GET http://%s:%d/small HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                            % (ALLOWED.encode(), self.up.http, OTHER.encode(), self.up.http))
        self.assertEqual(r.status, 403)
        self.assertEqual(r.header("X-Squid-Error"), "ERR_ACCESS_DENIED 0")
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="GET", status=403, tag="TCP_DENIED", hier="HIER_NONE",
                      server="-")
        self.assertUpstreamUntouched()

    def test_scope_http_only_entry_denies_connect(self):
        self.start("--allow-domains", "http://plain.test",
                   hosts={ALLOWED: "127.0.0.1", "plain.test": "127.0.0.1"})
        r = self.curl("https://plain.test:%d/small" % self.up.https, "-k", proxy=self.px)
        self.assertDenied(r)
        ok = self.curl("http://plain.test:%d/small" % self.up.http, proxy=self.px)
        self.assertEqual(ok.code, 200, ok)
        e1, e2 = self.px.entries(2)
        hp = "plain.test:%d" % self.up.https
        self.assertDeniedLine(e1, "CONNECT", hp, hp)
        assert_fields(self, e2, status=200, tag="TCP_MISS")

    def test_proxy_itself_is_denied(self):
        # A loop: the target is the proxy's own listener, on a port the policy allows.
        port = awf.free_port()
        self.start("--allow-ports", str(port), listen="127.0.0.1:%d" % port)
        url = "http://%s:%d/small" % (ALLOWED, self.px.port)
        r = self.curl(url, "--max-time", "20", proxy=self.px)
        self.assertEqual(r.code, 403, r)
        lines = self.px.wait_log(1)
        self.assertGreaterEqual(len(lines), 1)
        e = awf.parse_fd(self, lines[-1])
        assert_fields(self, e, status=403, tag="TCP_DENIED", url=url)

    def test_denied_then_allowed_on_one_connection(self):
        self.start()
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        rd = awf.Reader(s)
        s.sendall(b"GET http://evil.test/x HTTP/1.1\r\nHost: evil.test\r\n\r\n")
        r = rd.response()
        self.assertEqual(r.status, 403)
        if (r.header("Connection") or "").lower() != "close":
            s.sendall(b"GET http://%s:%d/small HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                      % (ALLOWED.encode(), self.up.http, ALLOWED.encode(), self.up.http))
            r = rd.response()
            self.assertEqual(r.status, 200)
            count = 2
        else:
            count = 1
        s.close()
        entries = self.px.entries(count)
        self.assertDeniedLine(entries[0], "GET", "http://evil.test/x", "evil.test", ua="-")


if __name__ == "__main__":
    unittest.main(verbosity=2)
