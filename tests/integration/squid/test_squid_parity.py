"""awf-proxy --squid-conf against Debian's Squid, the reference: the same squid.conf of AWF's
generated shape (policy/squidconf.md), the same requests through each, the same statuses.

Both proxies get the loopback test upstream and a hosts file mapping the test names to it.
awf-proxy also gets --allow-ranges 127.0.0.0/8 (it is stricter than Squid about private
addresses; flags override the file). Squid runs as root with `-N`, dropping to user proxy, so its
temporary directory is world-writable. A small parent proxy written here stands in for
AWF's upstream (corporate) proxy in the cache_peer tests and records what went through it.
"""

import os
import re
import select
import signal
import socket
import socketserver
import threading
import time
import unittest

import awf

NAMES = ["allowed.test", "api.allowed.test", "evil.allowed.test", "other.test",
         "api-v1.pattern.test", "api.pattern.test", "plain.test", "secure.test",
         "direct.allowed.test"]

# AWF's generated shape (gh-aw-firewall src/squid/config-generator.ts), our own values.
# @VARS@ are filled per proxy. Squid needs hosts_file for the names; dns_timeout bounds a
# reverse lookup Squid may try for an IP target.
CONF = r"""# Squid configuration for egress traffic control (test copy in AWF's shape)
pinger_enable off
pid_filename @TMP@/@WHO@.pid
logformat firewall_detailed %ts.%03tu %>a:%>p %{Host}>h %<a:%<p %rv %rm %>Hs %Ss:%Sh %ru "%{User-Agent}>h"
logformat audit_jsonl {"_schema":"audit/v1","timestamp":"%{%Y-%m-%dT%H:%M:%S}tg.%03tuZ","event":"http_access","client":"%>a","host":"%{Host}>h","dest":"%<a:%<p","method":"%rm","status":%>Hs,"decision":"%Ss","url":"%ru"}
acl healthcheck_localhost src 127.0.0.1 ::1
access_log @TMP@/@WHO@-access.log firewall_detailed !healthcheck_localhost
access_log stdio:@TMP@/@WHO@-audit.jsonl audit_jsonl !healthcheck_localhost
access_log @TMP@/@WHO@-all.log squid
cache_log @TMP@/@WHO@-cache.log
cache deny all

# ACL definitions for blocked domains
acl blocked_domains dstdomain .evil.allowed.test
# ACL definitions for allowed domains (HTTP and HTTPS)
acl allowed_domains dstdomain .allowed.test
acl allowed_domains_regex dstdom_regex -i ^api-[a-zA-Z0-9.-]*\.pattern\.test$
acl allowed_http_only dstdomain .plain.test
acl allowed_https_only_regex dstdom_regex -i ^([a-zA-Z0-9.-]*\.)?secure\.test$

# Port configuration
http_port 127.0.0.1:@PORT@

# Network ACLs
acl localnet src 10.0.0.0/8
acl localnet src 172.16.0.0/12
acl localnet src 192.168.0.0/16
acl localnet src fc00::/7
acl localnet src fe80::/10

# Port ACLs
acl SSL_ports port 443
acl Safe_ports port 80          # HTTP
acl Safe_ports port 443         # HTTPS
acl Safe_ports port @HTTP@ @HTTPS@ @HTTP2@      # User-specified via --allow-host-ports
acl CONNECT method CONNECT

# Access rules
http_access deny !Safe_ports
http_access deny CONNECT !Safe_ports

acl allow_api_proxy_ip dst 127.0.0.2
http_access allow allow_api_proxy_ip

acl dst_ipv4 dstdom_regex ^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$
acl dst_ipv6 dstdom_regex ^\\[?[0-9a-fA-F:]+\\]?$
http_access deny dst_ipv4
http_access deny dst_ipv6

http_access deny blocked_domains
http_access allow !CONNECT allowed_http_only
http_access allow CONNECT allowed_https_only_regex
http_access deny !allowed_domains !allowed_domains_regex

http_access allow localnet
http_access allow localhost
http_access deny all
cache deny all

hosts_file @TMP@/hosts
dns_nameservers 127.0.0.1
dns_timeout 2 seconds
negative_dns_ttl 1 seconds
dns_retransmit_interval 1 seconds
@PEER@
forwarded_for delete
via off
error_directory /usr/share/squid/errors/en
cache_mem 64 MB
maximum_object_size 0 KB
read_timeout 30 minutes
connect_timeout 30 seconds
request_timeout 2 minutes
persistent_request_timeout 2 minutes
pconn_timeout 2 minutes
client_lifetime 8 hours
half_closed_clients on
shutdown_lifetime 0 seconds
cache_effective_user proxy
coredump_dir @TMP@
"""

PEER = """cache_peer 127.0.0.1 parent @PARENT@ 0 no-query default
acl upstream_bypass dstdomain .direct.allowed.test
always_direct allow upstream_bypass
never_direct allow all
"""


class Parent:
    """A minimal HTTP forward proxy on loopback (CONNECT and absolute-form requests), one
    request per connection, resolving every name to 127.0.0.1. .seen: [(method, target)]."""

    def __init__(self, tc):
        self.seen, self.lock = [], threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                outer._handle(self.request)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        tc.addCleanup(self.close)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, c):
        try:
            self._forward(c)
        except OSError:
            c.close()

    def _forward(self, c):
        c.settimeout(awf.WAIT)
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(65536)
            if not d:
                return
            head += d
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
        with self.lock:
            self.seen.append((method, target))
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            up = socket.create_connection(("127.0.0.1", int(port)), awf.WAIT)
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                up.sendall(rest)
        else:
            hostport = target.split("/")[2]
            port = int(hostport.rsplit(":", 1)[1]) if ":" in hostport else 80
            path = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
            hdrs = [l for l in lines[1:] if l.split(":")[0].strip().lower() not in
                    ("connection", "proxy-connection", "keep-alive")]
            up = socket.create_connection(("127.0.0.1", port), awf.WAIT)
            req = "%s %s %s\r\n%s\r\nConnection: close\r\n\r\n" % (method, path, version,
                                                                  "\r\n".join(hdrs))
            up.sendall(req.encode("latin-1") + rest)
        self._relay(c, up, True)  # both ways: a request body may come after the head

    def _relay(self, c, up, both):
        socks = [c, up] if both else [up]
        try:
            while socks:
                r, _, _ = select.select(socks, [], [], awf.WAIT)
                if not r:
                    return
                for s in r:
                    d = s.recv(65536)
                    other = up if s is c else c
                    if not d:
                        socks = []
                        break
                    other.sendall(d)
        except OSError:
            pass
        finally:
            up.close()
            c.close()

    def targets(self):
        """What went through, less Squid's own cache-digest fetches from its peer."""
        with self.lock:
            return [t for t in self.seen if not t[1].startswith("/squid-internal")]


class SquidParityTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.squid_exe = awf.need_tool("squid")
        if os.geteuid() != 0:
            msg = "Squid is started as root here (it drops to user proxy)"
            if awf.CI:
                raise AssertionError(msg)
            raise unittest.SkipTest(msg)
        os.chmod(self.tmp, 0o777)  # Squid writes its logs and pid file here as user proxy
        self.up = self.upstream(tls=True)
        self.up2 = awf.Upstream(self, tls=False, host="127.0.0.2")  # the "api-proxy" raw IP
        with open(os.path.join(self.tmp, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n")
            for n in NAMES:
                f.write("127.0.0.1 %s\n" % n)

    def conf(self, who, port, parent=None):
        text = CONF
        peer = PEER.replace("@PARENT@", str(parent.port)) if parent else ""
        for k, v in (("@PEER@", peer), ("@TMP@", self.tmp), ("@WHO@", who), ("@PORT@", str(port)),
                     ("@HTTP@", str(self.up.http)), ("@HTTPS@", str(self.up.https)),
                     ("@HTTP2@", str(self.up2.http))):
            text = text.replace(k, v)
        return self.write(who + ".conf", text)

    def start_squid(self, parent=None):
        port = awf.free_port()
        path = self.conf("squid", port, parent)
        check = awf.subprocess.run([self.squid_exe, "-k", "parse", "-f", path],
                                   capture_output=True, timeout=60)
        self.assertEqual(check.returncode, 0, check.stderr.decode(errors="replace"))
        p = awf.Proc(self, "squid", [self.squid_exe, "-N", "-f", path])
        # Ready when cache.log says so: a probe connection would be logged as a transaction.
        deadline = time.monotonic() + awf.WAIT * 3
        while "Accepting HTTP Socket connections" not in "\n".join(self.read("squid-cache.log")):
            if not p.running() or time.monotonic() > deadline:
                raise AssertionError("squid did not start: " + p.stderr)
            time.sleep(0.1)
        p.url = "http://127.0.0.1:%d" % port
        return p

    def start_awf(self, parent=None):
        port = awf.free_port()
        path = self.conf("awf", port, parent)
        # listen=(): the squid.conf's http_port is the listener; logs=(): its access_log lines.
        p = self.proxy("--squid-conf", path, "--allow-ranges", "127.0.0.0/8", listen=(),
                       logs=(), hosts={n: "127.0.0.1" for n in NAMES}, ready=False)
        # cache_log takes the diagnostics, the readiness line included, as Squid's does (or
        # stderr, should the command line keep that line there).
        rx = re.compile(awf.STAMP + r"awf-proxy: listening on (\[[^\]]+\]|[^:]+):(\d+)$")
        deadline = time.monotonic() + awf.WAIT
        while True:
            lines = self.read("awf-cache.log") + p.stderr.split("\n")
            found = [m for m in map(rx.match, lines) if m]
            if found:
                p.addrs = [(m.group(1).strip("[]"), int(m.group(2))) for m in found]
                p.ports = [port for _, port in p.addrs]
                return p
            if not p.running() or time.monotonic() > deadline:
                raise AssertionError("awf-proxy did not start: %s\n%s" % (
                    p.stderr, "\n".join(self.read("awf-cache.log"))))
            time.sleep(0.1)

    def requests(self):
        """(label, url, curl args) for every case; statuses are compared, not assumed."""
        h, s, e, h2 = self.up.http, self.up.https, self.up.echo, self.up2.http
        out = []
        for name in NAMES[:-1]:
            out.append(("GET " + name, "http://%s:%d/small" % (name, h), []))
            out.append(("CONNECT " + name, "https://%s:%d/small" % (name, s), ["-k"]))
        out += [
            ("POST allowed.test", "http://allowed.test:%d/echo" % h, ["-d", "x=1"]),
            ("GET unsafe port", "http://allowed.test:%d/small" % e, []),
            ("CONNECT unsafe port", "https://allowed.test:%d/small" % e, ["-k"]),
            ("GET dst-allowed raw IP", "http://127.0.0.2:%d/small" % h2, []),
            ("GET upper case", "http://API-V1.Pattern.TEST:%d/small" % h, []),
        ]
        return out

    def run_all(self, proxy):
        return {label: (r.code, r.connect_code) for label, url, args in self.requests()
                for r in [self.curl(url, *args, proxy=proxy.url)]}

    def read(self, name):
        try:
            with open(os.path.join(self.tmp, name)) as f:
                return [l for l in f.read().split("\n") if l]
        except FileNotFoundError:
            return []

    def test_same_decisions_as_squid(self):
        sq = self.start_squid()
        want = self.run_all(sq)
        sq.stop(signal.SIGTERM)
        # Squid itself, as the reference, decided what AWF's users expect:
        self.assertEqual(want["GET allowed.test"][0], 200, want)
        self.assertEqual(want["GET other.test"][0], 403, want)
        self.assertEqual(want["CONNECT secure.test"][1], 200, want)
        self.assertEqual(want["GET secure.test"][0], 403, want)
        px = self.start_awf()
        got = self.run_all(px)
        self.assertEqual(got, want)
        n = len(self.requests())
        px.stop()
        # access_log ... !healthcheck_localhost: nothing from 127.0.0.1, in both; the
        # unconditional squid-format log has every request
        for who in ("squid", "awf"):
            self.assertEqual(self.read(who + "-access.log"), [], who)
            self.assertEqual(self.read(who + "-audit.jsonl"), [], who)
            self.assertEqual(len(self.read(who + "-all.log")), n, who)

    def test_awf_stricter_on_raw_ips(self):
        # Squid would allow a raw 127.0.0.1 through its reverse lookup (allowed.test) when the
        # hosts file lists that name first; awf-proxy allows only addresses a rule names.
        px = self.start_awf()
        r = self.curl("http://127.0.0.1:%d/small" % self.up.http, proxy=px.url)
        self.assertEqual(r.code, 403)
        r = self.curl("http://127.0.0.2:%d/small" % self.up2.http, proxy=px.url)
        self.assertEqual(r.code, 200)

    def test_parent_proxy_like_squid(self):
        reqs = [("GET", "http://allowed.test:%d/small" % self.up.http, []),
                ("CONNECT", "https://api.allowed.test:%d/small" % self.up.https, ["-k"]),
                ("GET direct", "http://direct.allowed.test:%d/small" % self.up.http, []),
                ("DENIED", "http://other.test:%d/small" % self.up.http, [])]
        results = {}
        for who in ("squid", "awf"):
            parent = Parent(self)
            px = self.start_squid(parent) if who == "squid" else self.start_awf(parent)
            codes = [self.curl(u, *a, proxy=px.url) for _, u, a in reqs]
            px.stop(signal.SIGTERM)
            # Squid logs the hierarchy as FIRSTUP_PARENT/<parent address> (HIER_DIRECT for the
            # always_direct name); compare the codes without the address.
            hier = [l.split()[8].split("/")[0] for l in self.read(who + "-all.log")]
            results[who] = ([(r.code, r.connect_code) for r in codes], sorted(parent.targets()),
                            hier)
        want_codes, want_seen, want_hier = results["squid"]
        self.assertEqual(want_seen, sorted([
            ("GET", "http://allowed.test:%d/small" % self.up.http),
            ("CONNECT", "api.allowed.test:%d" % self.up.https)]))
        self.assertEqual(want_hier, ["FIRSTUP_PARENT", "FIRSTUP_PARENT", "HIER_DIRECT",
                                     "HIER_NONE"])
        self.assertEqual(results["awf"], results["squid"])

    def test_to_policy(self):
        path = self.conf("awf", awf.free_port())
        p = self.cli("squid-conf", path, "--to-policy")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('  - "allowed.test"', p.stdout)
        self.assertIn('  - "https://secure.test"', p.stdout)
        self.assertIn('block:\n  - "evil.allowed.test"', p.stdout)
        self.assertIn("http_access allow localhost", p.stderr)  # named as not expressible
        out = self.write("policy.yml", p.stdout)
        c = self.cli("check", "--policy", out)
        self.assertEqual(c.returncode, 0, c.stderr)

    def test_errors_name_file_and_line(self):
        bad = self.write("bad.conf", "http_port 127.0.0.1:0\n\nacl x dstdomain .a.test\n"
                                     "http_access allow y\n")
        p = self.cli("check", "--squid-conf", bad)
        self.assertEqual(p.returncode, 2)
        self.assertIn('%s:4: http_access: unknown ACL "y"' % bad, p.stderr)


if __name__ == "__main__":
    unittest.main()
