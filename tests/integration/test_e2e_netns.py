"""The end-to-end proof of issue 5: an agent behind `awf-proxy netfilter apply`, in a small world
of network namespaces this test builds, can reach allowed names and nothing else.

    agent ns  10.231.0.20, fd00:231::20
       |  veth (default routes via the proxy's addresses)
    proxy ns  10.231.0.10, fd00:231::10 (agent side) / 10.231.1.10 (internet side)
       |  veth; ip_forward=0: nothing is routed through, only awf-proxy connects onwards
    internet ns  10.231.1.30: tests/tools/upstream.py --bind (HTTP :80, HTTPS :443 through a
                 REDIRECT to its ports; one certificate for allowed.test and denied.test) and
                 dnsmasq :53 (allowed.test and denied.test -> 10.231.1.30, --log-queries)

awf-proxy runs in the proxy namespace: --listen 10.231.0.10:3128, its DNS forwarder on
10.231.0.10:53 asking the internet's dnsmasq, allowing allowed.test (and 10.231.1.0/24 past the
private-address check). In the agent namespace `awf-proxy netfilter apply --dns-forwarder
10.231.0.10:53 --ipv6 on`, and resolv.conf (/etc/netns/NS/resolv.conf, bind-mounted by `ip netns
exec`) names the internet's resolver 10.231.1.30, which the rules DNAT to the forwarder.

Checked: plain curl (real name lookups, no proxy variables) and curl with HTTP(S)_PROXY reach
allowed.test over HTTP and HTTPS; each bypass attempt fails and is logged — a denied Host or SNI
straight to the internet's IP on 80/443 (TCP_DENIED in the access log, no connection reaches the
upstream), another TCP port, UDP to a non-DNS port, ICMP, IPv6 (the packet counters of the
matching LOG and DROP rules, read with iptables-save -c: the kernel log of a namespace is not
readable here), DNS for a denied name to the internet's resolver over UDP and TCP (REFUSED by
the forwarder, in its query log, absent from dnsmasq's), `iptables -F` as an unprivileged user;
the sysctl fallback when ip6tables cannot be used; `remove` gives back iptables-save exactly.
Targets in the proxy's namespace (a TCP/UDP sink, its address for ping) are reachable before
`apply`, so their failure afterwards is the firewall's doing.

Needs root, ip, iptables(-save/-restore), ip6tables(-save), curl, dnsmasq, openssl, setpriv:
skipped without them, a failure under CI=true. Namespaces (and with them veths and rules), the
/etc/netns entry and every process are removed by cleanups, also when a test fails.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import unittest
import uuid

import awf
from awf import assert_fields, pattern

AGENT, PROXY, PROXY_OUT, NET = "10.231.0.20", "10.231.0.10", "10.231.1.10", "10.231.1.30"
AGENT6, PROXY6 = "fd00:231::20", "fd00:231::10"
PPORT, SINK_TCP, SINK_UDP = 3128, 8080, 9999
ALLOWED, DENIED = "allowed.test", "denied.test"
PROXY_URL = "http://%s:%d" % (PROXY, PPORT)

# Rules of someone else in the agent's namespace before apply: they must come out of apply and
# remove untouched.
BASELINE_V4 = """*filter
-A INPUT -i lo -j ACCEPT
COMMIT
*nat
:DOCKER_OUTPUT - [0:0]
-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT
-A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:40000
COMMIT
"""
BASELINE_V6 = """*filter
-A INPUT -i lo -j ACCEPT
COMMIT
*nat
-A OUTPUT -d ::1/128 -j RETURN
COMMIT
"""

# Run in a namespace: one probe, its result on stdout ("connected", "sent", "pong", "rcode N
# [A-addresses]", or "failed ExceptionName ...").
PROBE = r"""
import os, socket, struct, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
def dns_msg(name, qtype):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", 0x4157, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", qtype, 1)
def skip_name(data, i):
    while data[i] and data[i] & 0xC0 != 0xC0:
        i += data[i] + 1
    return i + (2 if data[i] else 1)
def dns_answer(data):
    rcode, qd, an = data[3] & 15, *struct.unpack(">HH", data[4:8])
    i = 12
    for _ in range(qd):
        i = skip_name(data, i) + 4
    addrs = []
    for _ in range(an):
        i = skip_name(data, i)
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[i:i + 10])
        i += 10
        if rtype == 1:
            addrs.append(socket.inet_ntoa(data[i:i + 4]))
        i += rdlen
    return " ".join(["rcode", str(rcode)] + addrs)
try:
    if kind == "tcp":
        s = socket.create_connection((host, port), float(sys.argv[4]) if sys.argv[4:] else 10)
        s.sendall(b"hello-%d" % port)
        s.close()
        print("connected")
    elif kind == "udp":
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.sendto(b"hello-%d" % port, (host, port))
        print("sent")
    elif kind in ("dns-udp", "dns-tcp"):
        name, qtype = sys.argv[4], int(sys.argv[5])
        msg = dns_msg(name, qtype)
        if kind == "dns-udp":
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(5)
            s.connect((host, port))  # replies only from the address asked (un-NATed)
            s.send(msg)
            data = s.recv(4096)
        else:
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(struct.pack(">H", len(msg)) + msg)
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
                more = s.recv(4096)
                if not more:
                    raise EOFError("closed")
                data += more
            data = data[2:]
        print(dns_answer(data))
    else:  # icmp / icmp6 echo
        v6 = kind == "icmp6"
        s = socket.socket(fam, socket.SOCK_RAW,
                          socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
        s.settimeout(3)
        body = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, os.getpid() & 0xFFFF, 1) + b"awf!"
        if not v6:  # the kernel fills in the ICMPv6 checksum, not the ICMP one
            c = sum((body[i] << 8) + body[i + 1] for i in range(0, len(body), 2))
            c = (c >> 16) + (c & 0xFFFF)
            body = body[:2] + struct.pack("!H", ~(c + (c >> 16)) & 0xFFFF) + body[4:]
        s.sendto(body, (host, 0))
        while True:
            data, _ = s.recvfrom(512)
            if (v6 and data[0] == 129) or (not v6 and data[20] == 0):
                print("pong")
                break
except Exception as e:
    print("failed", e.__class__.__name__, e)
"""

# A sink in the proxy's namespace: prints "tcp PORT DATA" per connection, "udp PORT DATA" per
# datagram, on every address given (a TCP port and a UDP port).
SINK = r"""
import selectors, socket, sys
sel = selectors.DefaultSelector()
for spec in sys.argv[1:]:
    kind, addr, port = spec.split(",")
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(port)))
    if kind == "tcp":
        s.listen(16)
    sel.register(s, selectors.EVENT_READ, (kind, port))
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        kind, port = key.data
        if kind == "tcp":
            c, _ = key.fileobj.accept()
            c.settimeout(10)
            try:
                data = c.recv(100)
            except OSError:
                data = b""
            c.close()
        else:
            data, _ = key.fileobj.recvfrom(512)
        print(kind, port, data.decode(errors="replace"), flush=True)
"""


def run(cmd, check=True, env=None, stdin=None):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, input=stdin,
                       env=awf.clean_env(env), timeout=60)
    if check and p.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(map(str, cmd)), p.returncode,
                                                   p.stdout, p.stderr))
    return p


def normalize(save):
    """iptables-save text without its dated comments, counters zeroed."""
    lines = [re.sub(r"\[\d+:\d+\]$", "[0:0]", ln) for ln in save.splitlines()
             if not ln.startswith("#")]
    return "\n".join(lines) + "\n"


class _InNs(awf.Proc):
    """A Proc whose command runs in the network namespace self.ns (ip netns exec execs it: the
    pid and the signals are the command's own)."""

    def __init__(self, tc, name, cmd, env=None, stdout_lines=True):
        super().__init__(tc, name, ["ip", "netns", "exec", self.ns] + cmd, env, stdout_lines)


class NsProc(_InNs):
    def __init__(self, tc, ns, name, cmd):
        self.ns = ns
        super().__init__(tc, name, cmd)


class NsProxy(awf.Proxy, _InNs):
    def __init__(self, tc, ns, *args, **kw):
        self.ns = ns
        super().__init__(tc, *args, **kw)


class E2ENetnsTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            if awf.CI:
                raise AssertionError("CI=true: the end-to-end netns test needs root")
            raise unittest.SkipTest("needs root (network namespaces, iptables)")
        for tool in ("ip", "iptables", "iptables-save", "iptables-restore", "ip6tables",
                     "ip6tables-save", "ip6tables-restore", "curl", "dnsmasq", "openssl",
                     "setpriv", "sysctl"):
            awf.need_tool(tool)
        self.binary = awf.proxy_binary()
        tag = uuid.uuid4().hex[:6]
        self.ns_a, self.ns_p, self.ns_i = ("awfe-%s-%s" % (tag, r) for r in "api")
        for ns in (self.ns_a, self.ns_p, self.ns_i):
            r = run(["ip", "netns", "add", ns], check=False)
            if r.returncode != 0:
                msg = "cannot create a network namespace: " + r.stderr.strip()
                if awf.CI:
                    raise AssertionError(msg)
                raise unittest.SkipTest(msg)
            self.addCleanup(run, ["ip", "netns", "del", ns], check=False)
            self.ns(ns, "ip", "link", "set", "lo", "up")
        # veths are deleted with their namespaces
        va, vp, vq, vi = ("awfe%s%s" % (tag, r) for r in "apqi")
        run(["ip", "link", "add", va, "netns", self.ns_a, "type", "veth", "peer", "name", vp,
             "netns", self.ns_p])
        run(["ip", "link", "add", vq, "netns", self.ns_p, "type", "veth", "peer", "name", vi,
             "netns", self.ns_i])
        for ns, dev, addrs in ((self.ns_a, va, [AGENT + "/24", AGENT6 + "/64"]),
                               (self.ns_p, vp, [PROXY + "/24", PROXY6 + "/64"]),
                               (self.ns_p, vq, [PROXY_OUT + "/24"]),
                               (self.ns_i, vi, [NET + "/24"])):
            for a in addrs:
                self.ns(ns, "ip", "addr", "add", a, "dev", dev, *(["nodad"] if ":" in a else []))
            self.ns(ns, "ip", "link", "set", dev, "up")
        self.ns(self.ns_a, "ip", "route", "add", "default", "via", PROXY)
        self.ns(self.ns_a, "ip", "-6", "route", "add", "default", "via", PROXY6)
        # The proxy's namespace routes nothing through: only awf-proxy connects onwards.
        self.ns(self.ns_p, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        self.ns(self.ns_p, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=0")
        self.resolv_conf()
        self.start_internet()
        self.start_proxy()
        self.ns(self.ns_a, "iptables-restore", "--noflush", stdin=BASELINE_V4)
        self.ns(self.ns_a, "ip6tables-restore", "--noflush", stdin=BASELINE_V6)
        self.before = self.save()

    # ------------------------------------------------------------ the world

    def ns(self, ns, *cmd, check=True, env=None, stdin=None):
        return run(["ip", "netns", "exec", ns] + list(cmd), check=check, env=env, stdin=stdin)

    def resolv_conf(self):
        """The agent's resolver is the internet's dnsmasq (DNAT'd to the forwarder once the
        rules are in): `ip netns exec` bind-mounts /etc/netns/NS/resolv.conf."""
        made_top = not os.path.isdir("/etc/netns")
        d = os.path.join("/etc/netns", self.ns_a)
        os.makedirs(d)
        self.addCleanup(self._remove_etc_netns, d, made_top)
        with open(os.path.join(d, "resolv.conf"), "w") as f:
            f.write("nameserver %s\noptions timeout:3 attempts:2\n" % NET)

    @staticmethod
    def _remove_etc_netns(d, made_top):
        shutil.rmtree(d, ignore_errors=True)
        if made_top:
            try:
                os.rmdir("/etc/netns")
            except OSError:  # another test's namespace still uses it
                pass

    def make_cert(self):
        cert, key = os.path.join(self.tmp, "cert.pem"), os.path.join(self.tmp, "key.pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
             "-subj", "/CN=" + ALLOWED, "-addext",
             "subjectAltName=DNS:%s,DNS:%s" % (ALLOWED, DENIED)])
        return cert, key

    def start_internet(self):
        self.cert, key = self.make_cert()
        self.up = NsProc(self, self.ns_i, "upstream", [
            sys.executable, "-B", os.path.join(awf.TOOLS_DIR, "upstream.py"), "--bind", NET,
            "--cert", self.cert, "--key", key])
        if not self.up.wait_line("^ready$", stream="out"):
            raise AssertionError("upstream did not start: " + self.up.stderr)
        self.up_ports = {}
        for line in self.up.lines_out:
            parts = line.split()
            if len(parts) == 3:
                self.up_ports[parts[0]] = int(parts[2])
        # the internet's :80 and :443 are the upstream's ephemeral ports
        for port, kind in (("80", "http"), ("443", "https")):
            self.ns(self.ns_i, "iptables", "-t", "nat", "-A", "PREROUTING", "-d", NET, "-p",
                    "tcp", "--dport", port, "-j", "REDIRECT", "--to-ports",
                    str(self.up_ports[kind]))
        # dnsmasq has no upstream: it answers the two names' A records and REFUSED for anything
        # else (their AAAA too, which the forwarder passes on as SERVFAIL)
        self.dns_log = os.path.join(self.tmp, "dnsmasq.log")
        self.dnsmasq = NsProc(self, self.ns_i, "dnsmasq", [
            awf.need_tool("dnsmasq"), "--no-resolv", "--no-hosts", "--port=53",
            "--listen-address=" + NET, "--bind-interfaces", "--log-queries",
            "--log-facility=" + self.dns_log, "--keep-in-foreground", "--pid-file=",
            "--user=root", "--cache-size=0", "--address=/%s/%s" % (ALLOWED, NET),
            "--address=/%s/%s" % (DENIED, NET)])
        deadline = time.monotonic() + awf.WAIT
        while not self.probe(self.ns_i, "dns-udp", NET, 53, "probe.invalid", 1).startswith(
                "rcode"):
            if not self.dnsmasq.running() or time.monotonic() > deadline:
                raise AssertionError("dnsmasq did not start: " + self.dnsmasq.stderr)
            time.sleep(0.05)

    def start_proxy(self):
        self.fwd_log = os.path.join(self.tmp, "dnsfwd.log")
        self.px = NsProxy(self, self.ns_p, "--allow-domains", ALLOWED, "--allow-ranges",
                          "10.231.1.0/24", "--dns-listen", "%s:53" % PROXY, "--set",
                          "dns.forwarder.log=" + self.fwd_log, listen="%s:%d" % (PROXY, PPORT),
                          hosts={}, dns="%s:53" % NET)
        if not self.px.wait_line(r"dns forwarder on %s:53 " % re.escape(PROXY)):
            raise AssertionError("the DNS forwarder did not start: " + self.px.stderr)

    def start_sink(self):
        """The TCP/UDP sink in the proxy's namespace; returns a function giving its next line."""
        self.sink = NsProc(self, self.ns_p, "sink", [
            sys.executable, "-c", SINK, "tcp,%s,%d" % (PROXY, SINK_TCP),
            "tcp,%s,%d" % (PROXY6, SINK_TCP), "udp,%s,%d" % (PROXY, SINK_UDP)])
        self.assertTrue(self.sink.wait_line("^ready$", stream="out"), self.sink.stderr)
        self.sink_seen = 1

        def next_line():
            m = self.sink.wait_line("^(tcp|udp) ", stream="out", start=self.sink_seen)
            self.assertIsNotNone(m, "the sink in the proxy's namespace reported nothing")
            self.sink_seen = self.sink.lines_out.index(m.string, self.sink_seen) + 1
            return m.string.split()

        return next_line

    # ------------------------------------------------------------ tools

    def probe(self, ns, kind, host, port=0, *extra):
        return self.ns(ns, sys.executable, "-c", PROBE, kind, host, port,
                       *extra).stdout.strip()

    def agent(self, kind, host, port=0, *extra):
        return self.probe(self.ns_a, kind, host, port, *extra)

    def assertBlocked(self, kind, host, port=0, *extra):
        """A probe from the agent dropped by its own firewall: the kernel refuses to send a
        datagram or echo request (EPERM from the OUTPUT DROP); a TCP SYN goes unanswered (no
        RST, so nothing on the other side saw it), which one second shows."""
        if kind == "tcp":
            extra = ("1",)
        out = self.agent(kind, host, port, *extra)
        want = "failed TimeoutError" if kind == "tcp" else "failed PermissionError"
        self.assertTrue(out.startswith(want), "%s %s %s: %s" % (kind, host, port, out))

    def nf(self, *args, env=None):
        return self.ns(self.ns_a, self.binary, "netfilter", *args, check=False, env=env)

    def apply(self, *extra, env=None):
        r = self.nf("apply", "--side", "agent", "--proxy", "%s:%d" % (PROXY, PPORT),
                    "--agent-ip", "%s,%s" % (AGENT, AGENT6), "--dns-forwarder",
                    "%s:53" % PROXY, "--audit-file", os.path.join(self.tmp, "rules.txt"),
                    *(extra or ("--ipv6", "on")), env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotRegex(r.stderr, awf.SANITIZER)
        return r

    def save(self):
        return (normalize(self.ns(self.ns_a, "iptables-save").stdout),
                normalize(self.ns(self.ns_a, "ip6tables-save").stdout))

    def counters(self, family="iptables"):
        """{LOG prefix: (packets of the LOG rule, packets of the DROP rule after it)} of the
        agent's AWF_OUTPUT chain, from iptables-save -c."""
        rules = []
        for line in self.ns(self.ns_a, family + "-save", "-c", "-t", "filter").stdout.split("\n"):
            m = re.match(r"^\[(\d+):\d+\] -A AWF_OUTPUT (.*)$", line)
            if m:
                rules.append((int(m.group(1)), m.group(2)))
        out = {}
        for i, (pkts, rule) in enumerate(rules):
            m = re.search(r'--log-prefix "(\[FW_\w+\]) "', rule)
            if m and i + 1 < len(rules) and rules[i + 1][1].endswith("-j DROP"):
                out[m.group(1)] = (pkts, rules[i + 1][0])
        self.assertTrue(out, "no LOG rules in %s AWF_OUTPUT" % family)
        return out

    def assertCounted(self, before, prefix, family="iptables"):
        """The LOG rule of prefix, and the DROP after it, matched since before."""
        after = self.counters(family)
        self.assertGreater(after[prefix][0], before[prefix][0], "%s LOG: %s" % (prefix, after))
        self.assertGreater(after[prefix][1], before[prefix][1], "%s DROP: %s" % (prefix, after))
        return after

    def curl(self, url, *args, env=None):
        """curl in the agent's namespace; no proxy variables unless env brings them."""
        n = len(getattr(self, "curl_runs", []))
        body, hdrs = (os.path.join(self.tmp, "curl-%s-%d" % (k, n)) for k in ("body", "headers"))
        cmd = ["ip", "netns", "exec", self.ns_a, awf.need_tool("curl"), "-sS", "-o", body, "-D",
               hdrs, "-w", awf.WRITE_OUT, "--max-time", "30", "--cacert", self.cert]
        cmd += [str(a) for a in args] + [url]
        p = subprocess.run(cmd, capture_output=True, env=awf.clean_env(env), timeout=60)
        self.curl_runs = getattr(self, "curl_runs", []) + [cmd]
        return awf.CurlResult(p.returncode, p.stdout.decode(errors="replace"),
                              p.stderr.decode(errors="replace"), awf._read(body, b""),
                              awf._read(hdrs, b"").decode("latin-1"))

    def upstream_reached(self):
        """Connections that reached the upstream (its /stats requests left out), asked from
        inside the internet's namespace."""
        deadline = time.monotonic() + awf.WAIT
        while True:
            out = self.ns(self.ns_i, "curl", "-sS", "--max-time", "10",
                          "http://%s:%d/stats" % (NET, self.up_ports["http"])).stdout
            doc = json.loads(out)
            if doc["pending"] == 0 or time.monotonic() > deadline:
                return doc["spoke"] + doc["silent"]
            time.sleep(0.05)

    def dnsmasq_names(self):
        """Names dnsmasq was asked, as [(type, name, from)], without the start-up probe."""
        try:
            with open(self.dns_log) as f:
                text = f.read()
        except FileNotFoundError:
            return []
        return [m.groups() for m in re.finditer(r"query\[(\w+)\] (\S+) from (\S+)", text)
                if m.group(2) != "probe.invalid"]

    def fwd_lines(self, count):
        """The forwarder's query log once it has count lines (a writer thread writes it)."""
        deadline = time.monotonic() + awf.WAIT
        while True:
            try:
                with open(self.fwd_log) as f:
                    lines = [ln.split(" ") for ln in f.read().split("\n") if ln]
            except FileNotFoundError:
                lines = []
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    # ------------------------------------------------------------ the cases

    def test_e2e_allowed_names_plain_and_with_proxy_variables(self):
        # Before the rules, the agent has no way out: the proxy's namespace routes nothing.
        r = self.curl("http://%s/small" % ALLOWED, "--resolve", "%s:80:%s" % (ALLOWED, NET),
                      "--connect-timeout", "2")
        self.assertNotEqual(r.rc, 0, r)
        self.apply()
        # plain curl: the name is looked up through resolv.conf (10.231.1.30:53, DNAT'd to the
        # forwarder) and the connection to 10.231.1.30:80/443 is DNAT'd to the proxy
        r = self.curl("http://%s/small" % ALLOWED, "-A", "plain")
        self.assertEqual((r.rc, r.code, r.body), (0, 200, pattern(100)), r)
        r = self.curl("https://%s/small" % ALLOWED)
        self.assertEqual((r.rc, r.code, r.body), (0, 200, pattern(100)), r)
        # with the proxy variables curl speaks to the proxy explicitly
        env = {"http_proxy": PROXY_URL, "HTTPS_PROXY": PROXY_URL}
        r = self.curl("http://%s/small" % ALLOWED, "-A", "explicit", env=env)
        self.assertEqual((r.rc, r.code, r.body), (0, 200, pattern(100)), r)
        r = self.curl("https://%s/small" % ALLOWED, env=env)
        self.assertEqual((r.rc, r.code, r.connect_code, r.body), (0, 200, 200, pattern(100)), r)

        e = self.px.entries(4)
        hp = ALLOWED + ":443"
        common = dict(client=AGENT, server=NET, status=200)
        assert_fields(self, e[0], host=ALLOWED, server_port="80", method="GET", tag="TCP_MISS",
                      hier="ORIGINAL_DST", url="http://%s/small" % ALLOWED, ua="plain", **common)
        assert_fields(self, e[1], host=hp, server_port="443", method="CONNECT", tag="TCP_TUNNEL",
                      hier="ORIGINAL_DST", url=hp, **common)
        assert_fields(self, e[2], host=ALLOWED, server_port="80", method="GET", tag="TCP_MISS",
                      hier="HIER_DIRECT", url="http://%s/small" % ALLOWED, ua="explicit",
                      **common)
        assert_fields(self, e[3], host=hp, server_port="443", method="CONNECT", tag="TCP_TUNNEL",
                      hier="HIER_DIRECT", url=hp, **common)
        # three or four connections: the two HTTP requests may share a pooled one
        self.assertIn(self.upstream_reached(), (3, 4))
        # the agent's lookups went to the forwarder, which asked the internet's resolver
        asked = [(ln[1].rsplit(":", 1)[0], ln[2], ln[3], ln[4]) for ln in self.fwd_lines(1)]
        self.assertIn((AGENT, ALLOWED, "A", "allowed"), asked)
        names = self.dnsmasq_names()
        self.assertIn(("A", ALLOWED, PROXY_OUT), names)
        self.assertEqual({src for _, _, src in names}, {PROXY_OUT}, names)

    def test_e2e_denied_host_and_sni_to_the_internet_ip(self):
        self.apply()
        # HTTP to the internet's IP, port 80, naming a denied host: the proxy's 403
        r = self.curl("http://%s/small" % DENIED, "--resolve", "%s:80:%s" % (DENIED, NET))
        self.assertDenied(r)
        # TLS to the internet's IP, port 443, SNI denied.test (the certificate would be valid)
        r = self.curl("https://%s/small" % DENIED, "--resolve", "%s:443:%s" % (DENIED, NET))
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(r.code, 0, r)
        # the IP itself as the Host (allow-ranges lets the proxy dial it, not the agent name it)
        r = self.curl("http://%s/small" % NET)
        self.assertDenied(r)
        # the same names through the proxy, explicitly
        env = {"http_proxy": PROXY_URL, "https_proxy": PROXY_URL}
        r = self.curl("http://%s/small" % DENIED, env=env)
        self.assertDenied(r)
        r = self.curl("https://%s/small" % DENIED, env=env)
        self.assertDenied(r)
        e = self.px.entries(5)
        for entry in e:
            assert_fields(self, entry, client=AGENT, status=403, tag="TCP_DENIED",
                          hier="HIER_NONE", server="-")
        url_d, hp = "http://%s/small" % DENIED, DENIED + ":443"
        self.assertEqual([(x["method"], x["host"], x["url"]) for x in e],
                         [("GET", DENIED, url_d), ("CONNECT", hp, hp),
                          ("GET", NET, "http://%s/small" % NET), ("GET", DENIED, url_d),
                          ("CONNECT", hp, hp)])
        self.assertEqual(self.upstream_reached(), 0)
        # the proxy never even looked the denied name up
        self.assertNotIn(DENIED, [name for _, name, _ in self.dnsmasq_names()])

    def test_e2e_other_tcp_udp_icmp_fail_and_are_counted(self):
        sink = self.start_sink()
        # before: the proxy's namespace answers all of these
        self.assertEqual(self.agent("tcp", PROXY, SINK_TCP), "connected")
        self.assertEqual(sink(), ["tcp", str(SINK_TCP), "hello-%d" % SINK_TCP])
        self.assertEqual(self.agent("udp", PROXY, SINK_UDP), "sent")
        self.assertEqual(sink(), ["udp", str(SINK_UDP), "hello-%d" % SINK_UDP])
        self.assertEqual(self.agent("icmp", PROXY), "pong")
        self.apply()
        c = self.counters()
        # another TCP port, on the internet and on the proxy's own address
        for host in (NET, PROXY):
            self.assertBlocked("tcp", host, SINK_TCP)
            c = self.assertCounted(c, "[FW_BLOCKED_TCP]")
        # a dangerous port is its own class
        self.assertBlocked("tcp", NET, 22)
        c = self.assertCounted(c, "[FW_BLOCKED_DANGEROUS_PORT]")
        # UDP to a port that is not DNS
        for host in (NET, PROXY):
            self.assertBlocked("udp", host, SINK_UDP)
            c = self.assertCounted(c, "[FW_BLOCKED_UDP]")
        # ping
        for host in (NET, PROXY):
            self.assertBlocked("icmp", host)
            c = self.assertCounted(c, "[FW_BLOCKED_ICMP]")
        # the sink saw none of it: the next thing it reports is a connection of its own
        self.ns(self.ns_p, sys.executable, "-c", "import socket; socket.create_connection("
                "(%r, %d)).sendall(b'marker')" % (PROXY, SINK_TCP))
        self.assertEqual(sink(), ["tcp", str(SINK_TCP), "marker"])
        self.assertEqual(self.px.log_lines(), [])

    def test_e2e_ipv6_fails_and_is_counted(self):
        sink = self.start_sink()
        self.assertEqual(self.agent("tcp", PROXY6, SINK_TCP), "connected")
        self.assertEqual(sink(), ["tcp", str(SINK_TCP), "hello-%d" % SINK_TCP])
        self.assertEqual(self.agent("icmp6", PROXY6), "pong")
        self.apply("--ipv6", "on")
        c = self.counters("ip6tables")
        self.assertBlocked("tcp", PROXY6, SINK_TCP)
        c = self.assertCounted(c, "[FW_BLOCKED_TCP]", "ip6tables")
        # port 80 over IPv6 is not redirected (the proxy has no IPv6 address): dropped
        self.assertBlocked("tcp", PROXY6, 80)
        c = self.assertCounted(c, "[FW_BLOCKED_TCP]", "ip6tables")
        # DNS over IPv6: there is no IPv6 forwarder, so no IPv6 resolver at all
        self.assertBlocked("dns-udp", PROXY6, 53, ALLOWED, 1)
        c = self.assertCounted(c, "[FW_BLOCKED_UDP]", "ip6tables")
        self.assertBlocked("icmp6", PROXY6)
        self.assertCounted(c, "[FW_BLOCKED_ICMP]", "ip6tables")
        self.ns(self.ns_p, sys.executable, "-c", "import socket; socket.create_connection("
                "(%r, %d)).sendall(b'marker')" % (PROXY6, SINK_TCP))
        self.assertEqual(sink(), ["tcp", str(SINK_TCP), "marker"])

    def test_e2e_ipv6_disabled_by_sysctl_without_ip6tables(self):
        if not os.path.exists("/proc/sys/net/ipv6"):
            self.skipTest("no IPv6 in this kernel")
        sink = self.start_sink()
        self.assertEqual(self.agent("tcp", PROXY6, SINK_TCP), "connected")
        self.assertEqual(sink(), ["tcp", str(SINK_TCP), "hello-%d" % SINK_TCP])
        # an ip6tables-save that fails, first in PATH: ip6tables cannot be used
        d = os.path.join(self.tmp, "bin-no6")
        os.makedirs(d)
        with open(os.path.join(d, "ip6tables-save"), "w") as f:
            f.write("#!/bin/sh\necho 'ip6tables: no IPv6 here' >&2\nexit 1\n")
        os.chmod(os.path.join(d, "ip6tables-save"), stat.S_IRWXU)
        r = self.apply("--ipv6", "auto",
                       env={"PATH": d + ":" + os.environ.get("PATH", "/usr/sbin:/usr/bin")})
        self.assertIn("ip6tables cannot be used", r.stdout)
        for key in ("all", "default"):
            self.assertEqual(self.ns(self.ns_a, "cat", "/proc/sys/net/ipv6/conf/%s/disable_ipv6"
                                     % key).stdout.strip(), "1")
        # no IPv6 address is left to send from
        out = self.agent("tcp", PROXY6, SINK_TCP, "1")
        self.assertRegex(out, r"^failed OSError .*(Network is unreachable|Cannot assign)", out)
        self.assertEqual(self.save()[1], self.before[1])  # no ip6tables rule was loaded
        # IPv4 is filtered as usual
        c = self.counters()
        self.assertBlocked("tcp", PROXY, SINK_TCP)
        self.assertCounted(c, "[FW_BLOCKED_TCP]")
        self.ns(self.ns_p, sys.executable, "-c", "import socket; socket.create_connection("
                "(%r, %d)).sendall(b'marker')" % (PROXY, SINK_TCP))
        self.assertEqual(sink(), ["tcp", str(SINK_TCP), "marker"])

    def test_e2e_dns_for_a_denied_name_never_leaves(self):
        self.apply()
        # to the internet's resolver, over UDP and TCP: answered REFUSED by the forwarder
        self.assertEqual(self.agent("dns-udp", NET, 53, DENIED, 1), "rcode 5")
        self.assertEqual(self.agent("dns-tcp", NET, 53, DENIED, 28), "rcode 5")
        # to a resolver that does not exist: the same forwarder answers
        self.assertEqual(self.agent("dns-udp", "10.231.1.99", 53, DENIED, 1), "rcode 5")
        # an allowed name is answered with the internet's records...
        self.assertEqual(self.agent("dns-udp", NET, 53, ALLOWED, 1), "rcode 0 " + NET)
        # ... but only its addresses: a TXT query (a data channel) is not asked upstream
        self.assertEqual(self.agent("dns-udp", NET, 53, ALLOWED, 16), "rcode 0")
        lines = self.fwd_lines(5)
        got = [(ln[1].rsplit(":", 1)[0], ln[2], ln[3], ln[4], ln[5]) for ln in lines]
        self.assertEqual(got, [(AGENT, DENIED, "A", "denied", "REFUSED"),
                               (AGENT, DENIED, "AAAA", "denied", "REFUSED"),
                               (AGENT, DENIED, "A", "denied", "REFUSED"),
                               (AGENT, ALLOWED, "A", "allowed", "NOERROR"),
                               (AGENT, ALLOWED, "TXT", "allowed", "NOERROR")], lines)
        # the internet's resolver heard of allowed.test (A, from the proxy) and nothing else
        names = self.dnsmasq_names()
        self.assertNotIn(DENIED, [n for _, n, _ in names])
        self.assertEqual(sorted({(t, n) for t, n, _ in names}), [("A", ALLOWED)], names)
        self.assertEqual({src for _, _, src in names}, {PROXY_OUT}, names)

    def test_e2e_unprivileged_user_cannot_flush(self):
        self.apply()
        applied = self.save()
        nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        for cmd in (["iptables", "-F"], ["iptables", "-t", "nat", "-F"], ["ip6tables", "-F"],
                    ["iptables", "-X", "AWF_OUTPUT"]):
            r = self.ns(self.ns_a, *(nobody + cmd), check=False)
            self.assertNotEqual(r.returncode, 0, "%s as nobody: %s" % (cmd, r.stdout))
        self.assertEqual(self.save(), applied)
        # and the rules still bite
        c = self.counters()
        self.assertBlocked("tcp", NET, SINK_TCP)
        self.assertCounted(c, "[FW_BLOCKED_TCP]")

    def test_e2e_remove_restores_iptables_save_exactly(self):
        self.apply()
        self.assertNotEqual(self.save(), self.before)
        # traffic through the rules (counters, conntrack) changes nothing that remove leaves
        r = self.curl("http://%s/small" % ALLOWED)
        self.assertEqual((r.rc, r.code), (0, 200), r)
        self.assertBlocked("icmp", PROXY)
        r = self.nf("remove")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.save(), self.before)
        # what the rules blocked works again
        self.assertEqual(self.agent("icmp", PROXY), "pong")
        r = self.nf("remove")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("nothing to remove", r.stdout)
        self.assertEqual(self.save(), self.before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
