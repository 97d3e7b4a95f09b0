"""Transparent interception end to end (issue 4, SPEC §2).

NetnsInterceptTest builds a small network per test, as root, in namespaces of its own:

    client ns  --veth 10.231.0.2/24, fd00:a231::2/64-->  proxy ns 10.231.0.1, fd00:a231::1
                                                          lo: Y 10.231.1.10, X 10.231.1.20

In the proxy's namespace, nat PREROUTING REDIRECTs tcp 80 and 443 (IPv4 and IPv6) to awf-proxy,
so SO_ORIGINAL_DST is there to read; curl in the client's namespace runs with no proxy settings,
--resolve pinning names onto Y or X. Two test upstreams (tests/tools/upstream.py) listen on Y and
X (on loopback addresses of the proxy's namespace: upstream.py binds nothing else); nat OUTPUT
there maps Y:80/443 and X:80/443 onto their ports, so the proxy dials "Y:443" as it would a real
server. The proxy's hosts file says allowed.test is Y.
Skipped when not root or without ip/iptables/ip6tables/curl; a failure under CI=true. Namespaces
(and with them the veths and rules) and processes are removed even when a test fails.

LoopbackInterceptTest needs no root: explicit CONNECT with a mismatching SNI (curl
--connect-to), tunnels left idle before their ClientHello, a ClientHello that stops halfway,
and an intercepted request aimed at the proxy itself."""

import json
import os
import re
import subprocess
import sys
import time
import unittest
import uuid

import awf
from awf import ALLOWED, OTHER, assert_fields, pattern

Y, X = "10.231.1.10", "10.231.1.20"
Y6 = "fd00:a231:1::10"
PROXY_V4, PROXY_V6 = "10.231.0.1", "fd00:a231::1"
PPORT, PPORT_8443 = 3128, 3129
# %la:%lp is where an intercepted client was headed (SO_ORIGINAL_DST), as in Squid.
ORIG_FORMAT = "logformat=%la %lp %<a %<p %rm %Ss %Sh %ru"


def run(*cmd, check=True):
    p = subprocess.run(list(cmd), capture_output=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError("%s: %s" % (" ".join(cmd), p.stderr.decode(errors="replace")))
    return p


class NsProc(awf.Proc):
    """A Proc whose command runs in a network namespace (ip netns exec execs it: the pid and
    the signals are the command's own)."""

    def __init__(self, tc, name, cmd, env=None, stdout_lines=True):
        super().__init__(tc, name, ["ip", "netns", "exec", tc.ns_p] + cmd, env, stdout_lines)


class NsProxy(awf.Proxy, NsProc):
    pass


class NsUpstream(NsProc):
    """upstream.py on a loopback host inside the proxy's namespace (it binds loopback only),
    standing for the address public; .ports["http"|"https"|"echo"]."""

    def __init__(self, tc, host, public):
        cert, key = awf.certs()
        super().__init__(tc, "upstream-" + host, [
            sys.executable, "-B", os.path.join(awf.TOOLS_DIR, "upstream.py"), "--host", host,
            "--cert", cert, "--key", key])
        if not self.wait_line("^ready$", stream="out"):
            raise AssertionError("upstream did not start: " + self.stderr)
        self.host, self.public = host, public
        self.ports = {}
        for line in self.lines_out:
            parts = line.split()
            if len(parts) == 3:
                self.ports[parts[0]] = int(parts[2])


class NetnsInterceptTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            if awf.CI:
                raise AssertionError("CI=true: the netns tests need root")
            raise unittest.SkipTest("needs root (network namespaces, iptables)")
        for tool in ("ip", "iptables", "ip6tables", "curl"):
            awf.need_tool(tool)
        tag = uuid.uuid4().hex[:6]
        self.ns_c, self.ns_p = "awfi-%s-c" % tag, "awfi-%s-p" % tag
        for ns in (self.ns_c, self.ns_p):
            run("ip", "netns", "add", ns)
            self.addCleanup(run, "ip", "netns", "del", ns, check=False)
        vc, vp = "awfi%sc" % tag, "awfi%sp" % tag  # deleted with the namespaces
        run("ip", "link", "add", vc, "netns", self.ns_c, "type", "veth", "peer", "name", vp,
            "netns", self.ns_p)
        c, p = self.in_c, self.in_p
        for do, dev, addrs in ((c, vc, ["10.231.0.2/24", "fd00:a231::2/64"]),
                               (p, vp, ["10.231.0.1/24", "fd00:a231::1/64"])):
            do("ip", "link", "set", "lo", "up")
            for a in addrs:
                do("ip", "addr", "add", a, "dev", dev, *(["nodad"] if ":" in a else []))
            do("ip", "link", "set", dev, "up")
        c("ip", "route", "add", "default", "via", PROXY_V4)
        c("ip", "-6", "route", "add", "default", "via", PROXY_V6)
        for a in (Y + "/32", X + "/32", Y6 + "/128"):
            p("ip", "addr", "add", a, "dev", "lo")
        # The proxy's namespace: what comes in for 80/443 goes to the proxy...
        for ipt in ("iptables", "ip6tables"):
            for port in ("80", "443"):
                p(ipt, "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", port, "-j",
                  "REDIRECT", "--to-ports", str(PPORT))
        # ... and what the proxy dials on Y or X reaches that address's test upstream.
        self.up_y = NsUpstream(self, "127.0.0.10", Y)
        self.up_x = NsUpstream(self, "127.0.0.20", X)
        for up in (self.up_y, self.up_x):
            for port, to in (("80", up.ports["http"]), ("443", up.ports["https"]),
                             ("8443", up.ports["https"])):
                p("iptables", "-t", "nat", "-A", "OUTPUT", "-d", up.public, "-p", "tcp", "--dport",
                  port, "-j", "DNAT", "--to-destination", "%s:%d" % (up.host, to))

    def in_c(self, *cmd):
        return run("ip", "netns", "exec", self.ns_c, *cmd)

    def in_p(self, *cmd):
        return run("ip", "netns", "exec", self.ns_p, *cmd)

    def start(self, *extra, listen=("0.0.0.0:%d" % PPORT, "[::]:%d" % PPORT), domains=(ALLOWED,),
              hosts=None):
        self.orig_log = os.path.join(self.tmp, "orig.log")
        self.px = NsProxy(self, "--allow-domains", ",".join(domains), "--allow-ranges",
                          "10.231.0.0/16", "--access-log", "%s:%s" % (ORIG_FORMAT, self.orig_log),
                          *extra, listen=listen,
                          hosts=dict({ALLOWED: Y, OTHER: Y}, **(hosts or {})))
        self.px.wait_ready(len(listen))

    def curl(self, url, *args):
        """curl in the client's namespace, no proxy settings."""
        n = len(getattr(self, "curl_runs", []))
        body = os.path.join(self.tmp, "curl-body-%d" % n)
        hdrs = os.path.join(self.tmp, "curl-headers-%d" % n)
        cmd = ["ip", "netns", "exec", self.ns_c, awf.need_tool("curl"), "-sS", "-o", body, "-D",
               hdrs, "-w", awf.WRITE_OUT, "--max-time", "30", "--cacert", awf.certs()[0]]
        cmd += [str(a) for a in args] + [url]
        p = subprocess.run(cmd, capture_output=True, env=awf.clean_env(), timeout=60)
        self.curl_runs = getattr(self, "curl_runs", []) + [cmd]
        return awf.CurlResult(p.returncode, p.stdout.decode(errors="replace"),
                              p.stderr.decode(errors="replace"), awf._read(body, b""),
                              awf._read(hdrs, b"").decode("latin-1"))

    def orig_entries(self, count):
        """The custom log: [(la, lp, server, server_port, method, tag, hier, url)]."""
        deadline = time.monotonic() + awf.WAIT
        while True:
            try:
                with open(self.orig_log) as f:
                    lines = [l for l in f.read().split("\n") if l]
            except FileNotFoundError:
                lines = []
            if len(lines) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(lines), count, "\n".join(lines))
        return [tuple(l.split(" ")) for l in lines]

    def reached(self, up):
        """How many connections reached the upstream (the /stats requests left out)."""
        doc = self.stats(up)
        return doc["spoke"] + doc["silent"]

    def stats(self, up):
        """The upstream's counters, asked from inside the proxy's namespace."""
        deadline = time.monotonic() + awf.WAIT
        while True:
            out = self.in_p("curl", "-sS", "--max-time", "10", "http://%s:%d/stats"
                            % (up.host, up.ports["http"])).stdout
            doc = json.loads(out)
            if doc["pending"] == 0 or time.monotonic() > deadline:
                return doc
            time.sleep(0.05)

    def test_http_redirected(self):
        self.start()
        r = self.curl("http://%s/small" % ALLOWED, "--resolve", "%s:80:%s" % (ALLOWED, Y),
                      "-A", "netns")
        self.assertEqual((r.rc, r.code, r.body), (0, 200, pattern(100)), r)
        (e,) = self.px.entries(1)
        assert_fields(self, e, client="10.231.0.2", host=ALLOWED, server=Y, server_port="80",
                      method="GET", status=200, tag="TCP_MISS", hier="ORIGINAL_DST",
                      url="http://%s/small" % ALLOWED, ua="netns")
        self.assertEqual(self.orig_entries(1),
                         [(Y, "80", Y, "80", "GET", "TCP_MISS", "ORIGINAL_DST",
                           "http://%s/small" % ALLOWED)])

    def test_https_redirected(self):
        self.start()
        r = self.curl("https://%s/small" % ALLOWED, "--resolve", "%s:443:%s" % (ALLOWED, Y))
        self.assertEqual((r.rc, r.code, r.body), (0, 200, pattern(100)), r)
        hp = ALLOWED + ":443"
        (e,) = self.px.entries(1)
        assert_fields(self, e, host=hp, url=hp, server=Y, server_port="443", method="CONNECT",
                      status=200, tag="TCP_TUNNEL", hier="ORIGINAL_DST")
        self.assertEqual(self.orig_entries(1),
                         [(Y, "443", Y, "443", "CONNECT", "TCP_TUNNEL", "ORIGINAL_DST", hp)])

    def test_ipv6_redirected(self):
        # SO_ORIGINAL_DST over IPv6 (IP6T_SO_ORIGINAL_DST): the port 443 comes from it; the
        # name is still resolved by the proxy (to Y, IPv4).
        self.start()
        r = self.curl("https://%s/small" % ALLOWED, "--resolve", "%s:443:[%s]" % (ALLOWED, Y6))
        self.assertEqual((r.rc, r.code, r.body), (0, 200, pattern(100)), r)
        r = self.curl("http://%s/small" % ALLOWED, "--resolve", "%s:80:[%s]" % (ALLOWED, Y6))
        self.assertEqual((r.rc, r.code, r.body), (0, 200, pattern(100)), r)
        entries = self.orig_entries(2)
        self.assertEqual(entries[0][:6], (Y6, "443", Y, "443", "CONNECT", "TCP_TUNNEL"))
        self.assertEqual(entries[1][:6], (Y6, "80", Y, "80", "GET", "TCP_MISS"))

    def test_denied_names(self):
        self.start()
        r = self.curl("http://evil.test/small", "--resolve", "evil.test:80:%s" % Y)
        self.assertEqual(r.code, 403, r)
        self.assertEqual(r.header("X-Squid-Error"), "ERR_ACCESS_DENIED 0")
        r = self.curl("https://evil.test/small", "--resolve", "evil.test:443:%s" % Y, "-k")
        self.assertNotEqual(r.rc, 0, r)
        e1, e2 = self.px.entries(2)
        assert_fields(self, e1, host="evil.test", method="GET", status=403, tag="TCP_DENIED",
                      server="-")
        assert_fields(self, e2, host="evil.test:443", url="evil.test:443", method="CONNECT",
                      tag="TCP_DENIED", hier="HIER_NONE", server="-")
        # A TLS connection to the allowed IP with a denied SNI reached no upstream.
        self.assertEqual(self.reached(self.up_y), 0)

    def test_denied_sni_gets_alert_when_asked(self):
        self.start("--set", "tls.alert_on_deny=true")
        r = self.curl("https://evil.test/small", "--resolve", "evil.test:443:%s" % Y, "-k")
        self.assertNotEqual(r.rc, 0, r)
        self.assertRegex(r.err, re.compile("unrecognized name", re.I))
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", tag="TCP_DENIED", url="evil.test:443")

    def test_allowed_sni_to_denied_ip_goes_to_the_name(self):
        # The client aims at X; the ClientHello names allowed.test, which is Y: the bytes go
        # to Y, and X never sees a connection (no IP fronting).
        self.start()
        r = self.curl("https://%s/small" % ALLOWED, "--resolve", "%s:443:%s" % (ALLOWED, X))
        self.assertEqual((r.rc, r.code, r.body), (0, 200, pattern(100)), r)
        r = self.curl("http://%s/small" % ALLOWED, "--resolve", "%s:80:%s" % (ALLOWED, X))
        self.assertEqual((r.rc, r.code, r.body), (0, 200, pattern(100)), r)
        self.assertEqual(self.orig_entries(2),
                         [(X, "443", Y, "443", "CONNECT", "TCP_TUNNEL", "ORIGINAL_DST",
                           ALLOWED + ":443"),
                          (X, "80", Y, "80", "GET", "TCP_MISS", "ORIGINAL_DST",
                           "http://%s/small" % ALLOWED)])
        self.assertEqual(self.reached(self.up_x), 0)
        self.assertGreaterEqual(self.stats(self.up_y)["spoke"], 2)

    def test_no_sni_is_denied(self):
        self.start()
        r = self.curl("https://%s/small" % Y, "-k")  # curl sends no SNI for an IP
        self.assertNotEqual(r.rc, 0, r)
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", tag="TCP_DENIED", url="error:no-sni",
                      server="-")
        self.assertEqual(self.reached(self.up_y), 0)

    def test_dnat_elsewhere_uses_intercept_port(self):
        # DNAT in the client's namespace (AWF's layout): the proxy's conntrack knows nothing,
        # so the listener's intercept_port stands for the original port.
        self.in_c("iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "--dport", "8443", "-j",
                  "DNAT", "--to-destination", "%s:%d" % (PROXY_V4, PPORT_8443))
        text, _ = awf.policy_yaml(allow=[ALLOWED], extra=(
            "listen:\n  - \"0.0.0.0:%d\"\n  - {address: \"0.0.0.0:%d\", intercept_port: 8443}\n"
            "ports: [\"8443\"]\n" % (PPORT, PPORT_8443)))
        self.start("-p", self.write("policy.yaml", text), listen=())
        r = self.curl("https://%s:8443/small" % ALLOWED, "--resolve",
                      "%s:8443:%s" % (ALLOWED, X))
        self.assertEqual((r.rc, r.code, r.body), (0, 200, pattern(100)), r)
        hp = ALLOWED + ":8443"
        self.assertEqual(self.orig_entries(1),
                         [(PROXY_V4, str(PPORT_8443), Y, "8443", "CONNECT", "TCP_TUNNEL",
                           "ORIGINAL_DST", hp)])
        self.assertEqual(self.reached(self.up_x), 0)

    def test_own_traffic_redirected_back_is_a_loop(self):
        # A REDIRECT in the proxy's own namespace that also catches the proxy's own upstream
        # connections (here: everything for Z): the connection that comes back is recognised
        # as ours and denied, once, instead of going round until the file descriptors run out.
        z = "10.231.1.30"
        self.in_p("ip", "addr", "add", z + "/32", "dev", "lo")
        for port in ("80", "443"):
            self.in_p("iptables", "-t", "nat", "-I", "OUTPUT", "-d", z, "-p", "tcp", "--dport",
                      port, "-j", "REDIRECT", "--to-ports", str(PPORT))
        # One loop: each loop knows its own upstream connections, so with several loops a
        # connection that comes back may bounce once more per loop before it is recognised.
        self.start("--threads", "1", domains=(ALLOWED, "loop.test"), hosts={"loop.test": z})
        r = self.curl("http://loop.test/small", "--resolve", "loop.test:80:%s" % Y)
        self.assertEqual(r.code, 403, r)
        self.assertEqual(r.header("X-Squid-Error"), "ERR_ACCESS_DENIED 0")
        self.assertIn(b"this proxy", r.body)
        r = self.curl("https://loop.test/small", "--resolve", "loop.test:443:%s" % Y)
        self.assertNotEqual(r.rc, 0, r)
        entries = self.px.entries(4)  # two transactions, each seen twice: no more
        inner = [e for e in entries if e["client"] == z]
        outer = [e for e in entries if e["client"] == "10.231.0.2"]
        self.assertEqual((len(inner), len(outer)), (2, 2), [e["line"] for e in entries])
        assert_fields(self, inner[0], method="GET", tag="TCP_DENIED", status=403, server="-")
        assert_fields(self, inner[1], method="CONNECT", tag="TCP_DENIED", url="loop.test:443",
                      server="-")
        assert_fields(self, outer[0], method="GET", status=403, server=z, server_port="80")
        assert_fields(self, outer[1], method="CONNECT", url="loop.test:443", server=z,
                      server_port="443")


class LoopbackInterceptTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.up = self.upstream(tls=True)
        self.hp = "%s:%d" % (ALLOWED, self.up.https)

    def start(self, *extra):
        self.px = self.proxy(*awf.allow_loopback_args(ALLOWED, OTHER, ports=[self.up.https]),
                             *extra)

    def test_connect_with_mismatching_sni_fails(self):
        self.start()
        for sni in ("evil.test", OTHER):
            r = awf.curl(self, "https://%s:%d/small" % (sni, self.up.https), "-k",
                         "--connect-to", "%s:%d:%s" % (sni, self.up.https, self.hp),
                         proxy=self.px)
            self.assertNotEqual(r.rc, 0, r)
        r = awf.curl(self, "https://%s/small" % self.hp, "--cacert", awf.certs()[0],
                     proxy=self.px)
        self.assertEqual((r.rc, r.body), (0, pattern(100)), r)
        e1, e2, e3 = self.px.entries(3)
        for e in (e1, e2):
            assert_fields(self, e, method="CONNECT", url=self.hp, tag="TCP_DENIED")
        assert_fields(self, e3, method="CONNECT", url=self.hp, tag="TCP_TUNNEL")
        self.assertEqual(self.up.stats()["spoke"], 1)  # only the allowed one

    def test_tunnel_may_wait_before_its_client_hello(self):
        # client_hello runs from the ClientHello's first byte, not from the 200.
        self.start("--client-hello-timeout", "1s", "--read-timeout", "60s")
        s = awf.tunnel(self.px, self.hp)
        self.addCleanup(s.close)
        time.sleep(2.5)  # longer than client_hello: the tunnel must still be usable
        tls = awf.TlsClient(s, ALLOWED)
        tls.send(b"GET /small HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                 % self.hp.encode())
        self.assertEqual(tls.response(), (200, pattern(100)))
        s.close()
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", status=200, tag="TCP_TUNNEL")

    def test_idle_tunnel_ends_on_read_timeout(self):
        self.start("--client-hello-timeout", "60s", "--read-timeout", "1s")
        s = awf.tunnel(self.px, self.hp)
        self.addCleanup(s.close)
        self.assertEqual(awf.recv_all(s), b"")  # closed by the proxy (the wait is a bound)
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", tag="TCP_TUNNEL_ABORTED")
        self.assertEqual(self.up.stats()["spoke"], 0)

    def test_partial_client_hello_must_complete(self):
        self.start("--client-hello-timeout", "1s", "--read-timeout", "60s")
        s = awf.tunnel(self.px, self.hp)
        self.addCleanup(s.close)
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start
        self.assertEqual(awf.recv_all(s), b"")
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="CONNECT", tag="TCP_TUNNEL_ABORTED")
        self.assertEqual(self.up.stats()["spoke"], 0)

    def test_intercepted_request_to_the_proxy_itself_is_denied(self):
        port = awf.free_port()
        self.px = self.proxy("--allow-domains", "127.0.0.1", "--allow-ranges", "127.0.0.0/8",
                             "--allow-ports", str(port), listen="127.0.0.1:%d" % port)
        r = awf.raw_request(self.px, b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
        self.assertEqual(r.status, 403)
        self.assertIn(b"this proxy", r.body)
        (e,) = self.px.entries(1)  # one line: the request did not come round again
        assert_fields(self, e, method="GET", status=403, tag="TCP_DENIED", server="-")

    def test_client_sending_nothing(self):
        self.px = self.proxy("--request-timeout", "1s", "--client-idle-timeout", "1s")
        s = awf.connect(self.px)
        self.addCleanup(s.close)
        self.assertEqual(awf.recv_all(s), b"")
        s.close()
        (e,) = self.px.entries(1)
        assert_fields(self, e, method="-", version="0.0", status=0, tag="NONE_NONE", host="-",
                      url="error:transaction-end-before-headers")


if __name__ == "__main__":
    unittest.main(verbosity=2)
