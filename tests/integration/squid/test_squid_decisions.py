"""squid.conf decisions awf-proxy makes as Squid 5.7 does (each checked against Squid on
loopback): dstdomain values with a trailing dot match nothing; url_regex ACLs (AWF's
--enable-dlp) match the URL Squid matches, percent-decoded as Squid decodes it; dst ACLs match
host names by the addresses they resolve to (hosts file or DNS); directives awf-proxy does not
act on are reported once at start with their line. Loopback only."""

import os
import re
import time
import unittest

import awf

DLP = r"""http_port 127.0.0.1:0
acl dlp_blocked url_regex -i ghp_[a-zA-Z0-9]{36}
acl dlp_blocked url_regex -i PRIVATE(%%20|\+|%%2B)KEY
acl allowed_domains dstdomain .allowed.test
acl conn url_regex ^other\.test:%(https)d$
acl CONNECT method CONNECT
http_access deny dlp_blocked
http_access allow CONNECT conn
http_access allow allowed_domains
http_access deny all
cache_mem 64 MB
access_log %(tmp)s/dlp.log squid dlp_blocked
access_log %(tmp)s/all.log squid
"""

TOKEN = "ghp_" + "a1" * 18


class SquidDecisionsTest(awf.TestCase):
    def start(self, text, *args, hosts=None, dns=None, **kw):
        conf = self.write("squid.conf", text)
        return self.proxy("--squid-conf", conf, *args, listen=(), hosts=hosts, dns=dns, **kw)

    def test_trailing_dot_dstdomain_matches_nothing(self):
        up = self.upstream(tls=True)
        # AWF writes `--allow-domains allowed.test.` as ".allowed.test."; Squid denies it all.
        px = self.start("http_port 127.0.0.1:0\n"
                        "acl allowed_domains dstdomain .allowed.test.\n"
                        "acl others dstdomain .other.test\n"
                        "http_access allow allowed_domains\n"
                        "http_access allow others\n"
                        "http_access deny all\n", "--allow-ranges", "127.0.0.0/8")
        self.assertEqual(self.curl("http://allowed.test:%d/small" % up.http,
                                   proxy=px.url).code, 403)
        self.assertEqual(self.curl("http://allowed.test.:%d/small" % up.http,
                                   proxy=px.url).code, 403)
        r = self.curl("https://allowed.test:%d/small" % up.https, "-k", proxy=px.url)
        self.assertEqual(r.connect_code, 403)
        # request hosts still lose their trailing dot, as in Squid
        self.assertEqual(self.curl("http://other.test.:%d/small" % up.http,
                                   proxy=px.url).code, 200)
        notes = [l for l in px.stderr.split("\n") if "ends in a dot" in l]
        self.assertEqual(len(notes), 1, px.stderr)
        self.assertIn("squid.conf:2: acl allowed_domains: dstdomain \".allowed.test.\"", notes[0])

    def test_url_regex_dlp(self):
        up = self.upstream(tls=True)
        px = self.start(DLP % {"https": up.https, "tmp": self.tmp}, "--allow-ranges", "127.0.0.0/8",
                        logs=())  # the squid.conf's access_log lines
        base = "http://allowed.test:%d" % up.http
        self.assertEqual(self.curl(base + "/small", proxy=px.url).code, 200)
        self.assertEqual(self.curl(base + "/small?t=" + TOKEN, proxy=px.url).code, 403)
        self.assertEqual(self.curl(base + "/small?t=" + TOKEN.upper(), proxy=px.url).code, 403)
        # decoded first, as Squid: %2B is '+', %20 a space the pattern does not take
        self.assertEqual(self.curl(base + "/small?k=PRIVATE%2BKEY", proxy=px.url).code, 403)
        self.assertEqual(self.curl(base + "/small?k=PRIVATE%20KEY", proxy=px.url).code, 200)
        self.assertEqual(self.curl(base + "/small?k=%67hp_" + "a1" * 18, proxy=px.url).code, 403)
        # CONNECT is matched as host:port
        r = self.curl("https://other.test:%d/small" % up.https, "-k", proxy=px.url)
        self.assertEqual((r.connect_code, r.code), (200, 200))
        r = self.curl("https://other.test:%d/small" % up.echo, "-k", proxy=px.url)
        self.assertEqual(r.connect_code, 403)
        px.stop()
        with open(self.tmp + "/all.log") as f:
            self.assertEqual(len(f.read().splitlines()), 8)
        # an access_log condition with the url_regex ACL logs the DLP denials only
        with open(self.tmp + "/dlp.log") as f:
            dlp = f.read().splitlines()
        self.assertEqual(len(dlp), 4, dlp)
        self.assertTrue(all("TCP_DENIED/403" in l for l in dlp), dlp)

    def test_directive_notices_once_at_start(self):
        px = self.start(DLP % {"https": 443, "tmp": self.tmp} + "pinger_enable off\nhalf_closed_clients on\n")
        lines = px.stderr.split("\n")
        self.assertIn("awf-proxy: squid.conf:11: cache_mem ignored: awf-proxy keeps no cache",
                      [re.sub(awf.STAMP, "", l.replace(self.tmp + "/", "")) for l in lines])
        self.assertEqual(len([l for l in lines if "pinger_enable ignored" in l]), 1)
        self.assertEqual(len([l for l in lines if "half_closed_clients ignored" in l]), 1)
        c = self.cli("check", "--squid-conf", self.tmp + "/squid.conf")
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertIn("squid.conf:11: cache_mem ignored", c.stderr)

    def test_dst_matches_names_by_address(self):
        # AWF's api-proxy shape: `acl allow_api_proxy_ip dst IP` allows a name resolving to IP,
        # from the hosts file or from DNS; other names still fall to the deny.
        up = awf.Upstream(self, tls=True, host="127.0.0.5")
        other = self.upstream(tls=False)
        dns = awf.Dnsmasq(self, records={"dns-api.test": "127.0.0.5",
                                         "dns-other.test": "127.0.0.1"})
        px = self.start("http_port 127.0.0.1:0\n"
                        "acl allow_api_proxy_ip dst 127.0.0.5\n"
                        "http_access allow allow_api_proxy_ip\n"
                        "http_access deny all\n",
                        hosts={"api.test": "127.0.0.5", "other.test": "127.0.0.1"},
                        dns=dns.server)
        self.assertEqual(self.curl("http://api.test:%d/small" % up.http, proxy=px.url).code, 200)
        self.assertEqual(self.curl("http://dns-api.test:%d/small" % up.http,
                                   proxy=px.url).code, 200)
        r = self.curl("http://api.test:%d/small" % up.http, "-p", proxy=px.url)  # CONNECT
        self.assertEqual((r.connect_code, r.code), (200, 200))
        # TLS inside: the ClientHello's SNI is checked against the same decision
        r = self.curl("https://api.test:%d/small" % up.https, "-k", proxy=px.url)
        self.assertEqual((r.connect_code, r.code), (200, 200))
        # intercepted (origin-form) HTTP decides the same way on its Host header
        rr = awf.raw_request(px, b"GET /small HTTP/1.1\r\nHost: api.test:%d\r\n\r\n" % up.http)
        self.assertEqual(rr.status, 200)
        rr = awf.raw_request(px, b"GET /small HTTP/1.1\r\nHost: other.test:%d\r\n\r\n"
                             % other.http)
        self.assertEqual(rr.status, 403)
        self.assertEqual(self.curl("http://other.test:%d/small" % other.http,
                                   proxy=px.url).code, 403)
        self.assertEqual(self.curl("http://dns-other.test:%d/small" % other.http,
                                   proxy=px.url).code, 403)
        self.assertEqual(self.curl("http://nxdomain.test:%d/small" % other.http,
                                   proxy=px.url).code, 403)
        self.assertEqual(self.curl("http://127.0.0.5:%d/small" % up.http, proxy=px.url).code,
                         200)

    def explain(self, conf, target, *args, hosts="", dns=None):
        hp = self.write("explain-hosts", hosts)
        p = self.cli("explain", "--squid-conf", conf, "--hosts-file", hp, "--dns-servers",
                     dns or "127.0.0.1:%d" % awf.closed_port(), "--dns-timeout", "2s", *args,
                     target)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        lines = p.stdout.split("\n")
        return p.returncode, lines[0], lines[1][len("reason: "):], p.stdout

    def test_explain_client_method_and_resolution(self):
        dns = awf.Dnsmasq(self, records={"dns-api.test": "127.0.0.5"})
        conf = self.write("x.conf", "http_port 127.0.0.1:0\n"
                                    "acl agents src 10.0.0.0/8\n"
                                    "acl posts method POST\n"
                                    "acl api dst 127.0.0.5\n"
                                    "acl dlp url_regex -i secret\n"
                                    "acl names dstdomain .allowed.test\n"
                                    "http_access deny dlp\n"
                                    "http_access deny posts\n"
                                    "http_access allow api\n"
                                    "http_access allow agents names\n"
                                    "http_access deny all\n")
        hosts = "127.0.0.1 allowed.test\n127.0.0.5 api.test\n"
        # src: the default is "a client the config trusts"; --client picks one
        self.assertEqual(self.explain(conf, "http://allowed.test/", "--no-resolve",
                                      hosts=hosts)[:3], (0, "allow", "allowed"))
        rc, verdict, reason, out = self.explain(conf, "http://allowed.test/", "--no-resolve",
                                                "--client", "192.0.2.1", hosts=hosts)
        self.assertEqual((rc, verdict), (1, "deny"), out)
        self.assertIn("rule: http_access deny all", out)
        # method
        rc, _, _, out = self.explain(conf, "http://allowed.test/", "--no-resolve", "--method",
                                     "POST", hosts=hosts)
        self.assertEqual(rc, 1)
        self.assertIn("http_access deny posts", out)
        # url_regex sees the path of an http:// target, percent-decoded
        rc, _, _, out = self.explain(conf, "http://allowed.test/x?%73ecret", "--no-resolve",
                                     hosts=hosts)
        self.assertEqual(rc, 1)
        self.assertIn("http_access deny dlp", out)
        # resolving: a name allowed by the dst ACL, from the hosts file and from DNS; the
        # address a dst ACL names may be dialled (the ACL opens it)
        for name, origin in (("api.test", "hosts file"), ("dns-api.test", "DNS")):
            rc, verdict, reason, out = self.explain(conf, "http://%s/" % name, hosts=hosts,
                                                    dns=dns.server)
            self.assertIn("rule: http_access allow api", out)
            self.assertEqual((rc, verdict), (0, "allow"), out)
            self.assertIn("address: 127.0.0.5 (%s): may be dialled" % origin, out)
        # a name the rules allow whose address the check denies: what the proxy answers 403 to
        rc, verdict, reason, out = self.explain(conf, "http://allowed.test/", hosts=hosts)
        self.assertEqual((rc, verdict, reason), (1, "deny", "address"), out)
        self.assertIn("rule: http_access allow agents names", out)
        self.assertIn("address: 127.0.0.1 (hosts file): denied: 127.0.0.0/8 loopback", out)
        self.assertIn("stricter than Squid: link-local (cloud metadata) and loopback", out)
        rc, verdict, _, out = self.explain(conf, "http://allowed.test/", "--allow-ranges",
                                           "127.0.0.0/8", hosts=hosts)
        self.assertEqual((rc, verdict), (0, "allow"), out)
        # --no-resolve: dst matches raw IPs only, no address lines
        rc, _, _, out = self.explain(conf, "http://api.test/", "--no-resolve", hosts=hosts)
        self.assertEqual(rc, 1)
        self.assertIn("addresses: not resolved (--no-resolve)", out)
        # a name that does not resolve: the proxy would answer 503
        rc, verdict, reason, out = self.explain(conf, "http://allowed.test/", "--allow-ranges",
                                                "127.0.0.0/8", hosts="", dns=dns.server)
        self.assertEqual((rc, reason), (1, "dns_fail"), out)
        # CONNECT: the SNI rule awf-proxy adds
        rc, _, _, out = self.explain(conf, "allowed.test:443", "--allow-ranges", "127.0.0.0/8",
                                     hosts=hosts)
        self.assertEqual(rc, 0, out)
        self.assertIn("stricter than Squid: inside the tunnel the TLS ClientHello's SNI", out)
        # bad flags
        p = self.cli("explain", "--squid-conf", conf, "--client", "nope", "http://a.test/")
        self.assertEqual(p.returncode, 2)
        self.assertIn('--client "nope": not an IPv4 or IPv6 address', p.stderr)


# The same squid.conf through Squid 5.7 (the reference) and awf-proxy: the features above.
DIFF = r"""http_port 127.0.0.1:@PORT@
pid_filename @TMP@/@WHO@.pid
cache_log @TMP@/@WHO@-cache.log
access_log @TMP@/@WHO@-access.log squid
coredump_dir @TMP@
cache deny all
pinger_enable off
hosts_file @TMP@/hosts
dns_nameservers 127.0.0.1
dns_timeout 2 seconds
shutdown_lifetime 0 seconds
acl dlp url_regex -i ghp_[a-zA-Z0-9]{36}
acl dlp url_regex -i PRIVATE(%20|\+|%2B)KEY
acl trailing dstdomain .dot.test. plain-dot.test.
acl api dst 127.0.0.5
acl names dstdomain .allowed.test
acl Safe_ports port 80 443 @PORTS@
acl CONNECT method CONNECT
http_access deny !Safe_ports
http_access deny dlp
http_access allow api
http_access allow trailing
http_access allow names
http_access deny all
"""


class SquidDiffTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.squid_exe = awf.need_tool("squid")
        if os.geteuid() != 0:
            if awf.CI:
                raise AssertionError("Squid is started as root here (it drops to user proxy)")
            raise unittest.SkipTest("Squid is started as root here (it drops to user proxy)")
        os.chmod(self.tmp, 0o777)
        self.up = self.upstream(tls=True)
        self.up5 = awf.Upstream(self, tls=True, host="127.0.0.5")
        self.names = {"allowed.test": "127.0.0.1", "dot.test": "127.0.0.1",
                      "a.dot.test": "127.0.0.1", "plain-dot.test": "127.0.0.1",
                      "api.test": "127.0.0.5"}
        with open(os.path.join(self.tmp, "hosts"), "w") as f:
            f.write("".join("%s %s\n" % (a, n) for n, a in self.names.items()))

    def conf(self, who, port):
        ports = "%d %d %d %d" % (self.up.http, self.up.https, self.up5.http, self.up5.https)
        text = DIFF
        for k, v in (("@TMP@", self.tmp), ("@WHO@", who), ("@PORT@", str(port)),
                     ("@PORTS@", ports)):
            text = text.replace(k, v)
        return self.write(who + ".conf", text)

    @staticmethod
    def slurp(path):
        try:
            with open(path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start_squid(self):
        port = awf.free_port()
        p = awf.Proc(self, "squid", [self.squid_exe, "-N", "-f", self.conf("squid", port)])
        log = os.path.join(self.tmp, "squid-cache.log")
        deadline = time.monotonic() + awf.WAIT * 3
        while True:
            try:
                with open(log) as f:
                    if "Accepting HTTP Socket connections" in f.read():
                        break
            except FileNotFoundError:
                pass
            if not p.running() or time.monotonic() > deadline:
                raise AssertionError("squid did not start: " + p.stderr)
            time.sleep(0.1)
        p.url = "http://127.0.0.1:%d" % port
        return p

    def run_all(self, url):
        h, s, h5, s5 = self.up.http, self.up.https, self.up5.http, self.up5.https
        reqs = [
            ("http://allowed.test:%d/small" % h, ()),
            ("http://allowed.test.:%d/small" % h, ()),
            ("http://allowed.test:%d/small?t=%s" % (h, TOKEN), ()),
            ("http://allowed.test:%d/small?t=%s" % (h, TOKEN.upper()), ()),
            ("http://allowed.test:%d/small?k=PRIVATE%%2BKEY" % h, ()),
            ("http://allowed.test:%d/small?k=PRIVATE%%20KEY" % h, ()),
            ("http://allowed.test:%d/small?k=PRIVATE+KEY" % h, ()),
            ("https://allowed.test:%d/small" % s, ("-k",)),
            ("http://dot.test:%d/small" % h, ()),
            ("http://a.dot.test:%d/small" % h, ()),
            ("http://dot.test.:%d/small" % h, ()),
            ("http://plain-dot.test:%d/small" % h, ()),
            ("https://dot.test:%d/small" % s, ("-k",)),
            ("http://api.test:%d/small" % h5, ()),
            ("https://api.test:%d/small" % s5, ("-k",)),
            # the dst rule needs a lookup that fails: dst does not match, the names rule
            # allows, and the name cannot be reached
            ("http://nx.allowed.test:%d/small" % h, ()),
        ]
        return [(u, r.code, r.connect_code) for u, a in reqs
                for r in [self.curl(u, *a, proxy=url)]]

    def test_same_decisions_as_squid(self):
        sq = self.start_squid()
        want = self.run_all(sq.url)
        sq.stop()
        codes = [c for _, c, _ in want]
        # Squid itself, as the reference, decided what AWF's users expect:
        self.assertEqual(codes[:7], [200, 200, 403, 403, 403, 200, 403], want)
        self.assertEqual(codes[8:12], [403, 403, 403, 403], want)  # trailing dots: nothing
        self.assertEqual(codes[13:15], [200, 200], want)  # dst on a name
        # allowed, then the lookup fails: Squid answers 502 here, awf-proxy 503 ERR_DNS_FAIL
        # (SPEC §5); the decision is what is compared
        self.assertIn(codes[15], (502, 503), want)
        port = awf.free_port()
        px = self.proxy("--squid-conf", self.conf("awf", port), "--allow-ranges",
                        "127.0.0.0/8", listen=(), logs=(), hosts=self.names, ready=False)
        # ready when cache_log (the diagnostics file, as Squid's) says it listens
        log = os.path.join(self.tmp, "awf-cache.log")
        deadline = time.monotonic() + awf.WAIT
        while "listening on" not in self.slurp(log):
            if not px.running() or time.monotonic() > deadline:
                raise AssertionError("awf-proxy did not start: " + px.stderr)
            time.sleep(0.05)
        got = self.run_all("http://127.0.0.1:%d" % port)
        px.stop()
        self.assertIn(got[-1][1], (502, 503), got)
        got[-1] = want[-1] = None
        with open(log) as f:
            self.assertIn("awf.conf:6: cache ignored: awf-proxy keeps no cache", f.read())
        self.assertEqual(got, want)


if __name__ == "__main__":
    unittest.main(verbosity=2)
