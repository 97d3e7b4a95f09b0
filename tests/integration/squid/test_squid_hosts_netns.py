"""AWF's host-access and topology-peer configs (issue 11): names the proxy's own hosts file maps
to private addresses (Docker's host.docker.internal -> 172.17.0.1, a sibling container on
172.30.0.x) are reached, as with Squid, while a hosts-file name for 169.254.169.254 (cloud
metadata) stays denied unless a dst ACL names it, and a private address that DNS gives stays
denied. `explain` says what `run` does, request by request.

Everything runs in one network namespace the test makes (root): the private addresses on its
loopback device, upstreams bound to them (tests/tools/upstream.py --bind), dnsmasq, the proxy,
explain and curl. Skipped when not root; a failure under CI=true."""

import os
import sys
import time
import unittest
import uuid

import awf
from test_intercept_netns import NsProc, NsProxy, run

GW, PEER, META = "172.17.0.1", "172.30.0.5", "169.254.169.254"

CONF = r"""http_port 127.0.0.1:0
acl allowed_domains dstdomain .host.docker.internal .metadata.test .dns-private.test
acl topology_peer_awmg_mcpg dstdomain awmg-mcpg
acl Safe_ports port 80 443 %(safe)s
acl CONNECT method CONNECT
http_access allow topology_peer_awmg_mcpg
http_access deny !Safe_ports
http_access deny CONNECT !Safe_ports
%(meta)s
acl dst_ipv4 dstdom_regex ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$
http_access deny dst_ipv4
http_access deny !allowed_domains
http_access allow localhost
http_access deny all
"""


class NsUpstream(NsProc):
    def __init__(self, tc, addr):
        super().__init__(tc, "upstream-" + addr, [
            sys.executable, "-B", os.path.join(awf.TOOLS_DIR, "upstream.py"), "--bind", addr,
            "--no-echo"])
        if not self.wait_line("^ready$", stream="out"):
            raise AssertionError("upstream did not start: " + self.stderr)
        self.http = [int(l.split()[2]) for l in self.lines_out if l.startswith("http ")][0]


class HostsFileNetnsTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            if awf.CI:
                raise AssertionError("CI=true: the netns tests need root")
            raise unittest.SkipTest("needs root (a network namespace)")
        for tool in ("ip", "curl", "dnsmasq"):
            awf.need_tool(tool)
        self.ns_p = "awfh-%s" % uuid.uuid4().hex[:8]  # NsProc runs commands in ns_p
        run("ip", "netns", "add", self.ns_p)
        self.addCleanup(run, "ip", "netns", "del", self.ns_p, check=False)
        self.ns("ip", "link", "set", "lo", "up")
        for a in (GW, PEER, META):
            self.ns("ip", "addr", "add", a + "/32", "dev", "lo")
        self.gw, self.peer, self.meta = (NsUpstream(self, a) for a in (GW, PEER, META))
        # dnsmasq in the namespace: a private address from DNS, which the agent could steer
        dlog = os.path.join(self.tmp, "dnsmasq.log")
        NsProc(self, "dnsmasq", [awf.need_tool("dnsmasq"), "--no-resolv", "--no-hosts",
                                 "--port=5353", "--listen-address=127.0.0.1", "--bind-interfaces",
                                 "--log-facility=" + dlog, "--keep-in-foreground", "--pid-file=",
                                 "--user=root", "--address=/dns-private.test/" + GW])
        deadline = time.monotonic() + awf.WAIT
        while "started" not in self.slurp(dlog):
            if time.monotonic() > deadline:
                raise AssertionError("dnsmasq did not start")
            time.sleep(0.05)
        self.hosts = {"host.docker.internal": GW, "awmg-mcpg": PEER, "metadata.test": META}

    def ns(self, *cmd, check=True):
        return run("ip", "netns", "exec", self.ns_p, *cmd, check=check)

    @staticmethod
    def slurp(path):
        try:
            with open(path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def conf(self, meta=""):
        return self.write("squid.conf", CONF % {
            "safe": "%d %d" % (self.gw.http, self.meta.http), "meta": meta})

    def flags(self):
        return ["--hosts-file", os.path.join(self.tmp, "hosts"), "--dns-servers",
                "127.0.0.1:5353", "--dns-timeout", "2s"]

    def code(self, px, url, *args):
        p = self.ns("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
                    "-x", px.url, *args, url, check=False)
        return int(p.stdout.decode() or 0)

    def explain(self, conf, url, *args):
        p = self.ns(awf.proxy_binary(), "explain", "--squid-conf", conf, *self.flags(), *args,
                    url, check=False)
        return p.returncode, p.stdout.decode()

    def cases(self):
        return [("http://host.docker.internal:%d/small" % self.gw.http, ()),
                ("http://awmg-mcpg:%d/small" % self.peer.http, ()),
                ("http://awmg-mcpg:%d/small" % self.peer.http, ("-p",)),  # CONNECT
                ("http://metadata.test:%d/small" % self.meta.http, ()),
                ("http://dns-private.test:%d/small" % self.gw.http, ())]

    def run_cases(self, conf):
        px = NsProxy(self, "--squid-conf", conf, "--dns-timeout", "2s", listen=(),
                     hosts=self.hosts, dns="127.0.0.1:5353")
        got = []
        for url, args in self.cases():
            code = self.code(px, url, *args)
            target = url if not args else url.split("/")[2]  # explain's CONNECT form
            rc, out = self.explain(conf, target)
            self.assertEqual(rc, 0 if code == 200 else 1, "%s: curl %d, explain:\n%s" % (
                url, code, out))
            got.append((code, out))
        px.stop()
        return got

    def test_host_access_and_peers(self):
        got = self.run_cases(self.conf())
        codes = [c for c, _ in got]
        self.assertEqual(codes, [200, 200, 200, 403, 403])
        self.assertIn("address: 172.17.0.1 (hosts file): may be dialled", got[0][1])
        self.assertIn("denied: 169.254.0.0/16 link-local (cloud metadata)", got[3][1])
        self.assertIn("stricter than Squid: link-local", got[3][1])
        self.assertIn("address: 172.17.0.1 (DNS): denied: 172.16.0.0/12 private", got[4][1])

    def test_metadata_only_through_a_dst_acl(self):
        conf = self.conf("acl meta dst %s\nhttp_access allow meta" % META)
        codes = [c for c, _ in self.run_cases(conf)]
        self.assertEqual(codes, [200, 200, 200, 200, 403])


if __name__ == "__main__":
    unittest.main(verbosity=2)
