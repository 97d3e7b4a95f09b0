"""IPv6 spellings of denied addresses are never dialled (issue 13, finding 3).

Each test makes a network namespace of its own with only its loopback: the IPv6 addresses the
names resolve to are put on that loopback, a sink listens on [::]:80 there and reports every
connection, dnsmasq answers the names' AAAA records, and awf-proxy runs there too. So a dial
would really connect (and be seen), and nothing can leave the namespace whatever the proxy
does. Needs root, ip and dnsmasq (skipped without them; a failure under CI=true).
"""

import os
import subprocess
import sys
import unittest
import uuid

import awf

# The sink: accepts on [::]:80 (IPv4 too), prints the address each connection came to, answers
# 204 and closes.
SINK = r"""
import socket, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 80))
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    print("accept", c.getsockname()[0], flush=True)
    c.recv(65536)
    c.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
    c.close()
"""

# name -> the address dnsmasq gives as its only (AAAA) record; all denied by default.
DENIED = {
    "compat.test": "::a9fe:a9fe",  # IPv4-compatible ::169.254.169.254
    "siit.test": "::ffff:0:a9fe:a9fe",  # SIIT ::ffff:0:169.254.169.254
    "nat64-local.test": "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 prefix
    "sitelocal.test": "fec0::1",
    "sixtofour.test": "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "teredo.test": "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo client 169.254.169.254
    "nat64.test": "64:ff9b::a9fe:a9fe",  # NAT64 well-known prefix
}
# Allowed when the policy opens their ranges (the controls: the setup sees a dial).
OPENED = {
    "ula.test": "fd00:a232::5",
    "nat64-ok.test": "64:ff9b::a01:203",  # 64:ff9b::10.1.2.3, both ranges opened
}


class NsProc(awf.Proc):
    def __init__(self, tc, name, cmd):
        super().__init__(tc, name, ["ip", "netns", "exec", tc.ns] + cmd)


class NsProxy(awf.Proxy, NsProc):
    pass


class AddrNetnsTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            if awf.CI:
                raise AssertionError("CI=true: the netns tests need root")
            raise unittest.SkipTest("needs root (network namespaces)")
        awf.need_tool("ip")
        dnsmasq = awf.need_tool("dnsmasq")
        self.ns = "awfa-%s" % uuid.uuid4().hex[:8]
        subprocess.run(["ip", "netns", "add", self.ns], check=True, timeout=30)
        self.addCleanup(subprocess.run, ["ip", "netns", "del", self.ns], timeout=30)
        self.ip("link", "set", "lo", "up")
        for addr in list(DENIED.values()) + list(OPENED.values()):
            self.ip("-6", "addr", "add", addr + "/128", "dev", "lo", "nodad")
        self.sink = NsProc(self, "sink", [sys.executable, "-B", "-c", SINK])
        self.assertIsNotNone(self.sink.wait_line("^ready$", stream="out"), self.sink.stderr)
        cmd = [dnsmasq, "--no-resolv", "--no-hosts", "--port=53", "--listen-address=127.0.0.1",
               "--bind-interfaces", "--keep-in-foreground", "--pid-file=", "--cache-size=0",
               "--user=root"]
        for name, addr in list(DENIED.items()) + list(OPENED.items()):
            cmd.append("--address=/%s/%s" % (name, addr))
        self.dns = NsProc(self, "dnsmasq", cmd)

    def ip(self, *args):
        subprocess.run(["ip", "-n", self.ns] + list(args), check=True, timeout=30,
                       capture_output=True)

    def get(self, px, name):
        """curl inside the namespace through the proxy; returns the HTTP status."""
        p = subprocess.run(["ip", "netns", "exec", self.ns, "curl", "-s", "-o", "/dev/null",
                            "-w", "%{http_code}", "--max-time", "20", "-x", px.url,
                            "http://%s/" % name], capture_output=True, timeout=60,
                           env=awf.clean_env())
        return int(p.stdout or 0)

    def test_ipv6_forms_of_denied_ranges_not_dialled(self):
        names = list(DENIED) + list(OPENED)
        px = NsProxy(self, "--allow-domains", ",".join(names), "--allow-ranges",
                     "fd00:a232::/64,10.1.0.0/16,64:ff9b::/96", dns="127.0.0.1:53")
        for name in DENIED:
            self.assertEqual(self.get(px, name), 403, name)
        for name in OPENED:
            self.assertEqual(self.get(px, name), 204, name)
        entries = px.entries(len(names))
        for e, name in zip(entries, names):
            if name in DENIED:
                awf.assert_fields(self, e, method="GET", status=403, tag="TCP_DENIED",
                                  url="http://%s/" % name)
            else:
                awf.assert_fields(self, e, method="GET", status=204, tag="TCP_MISS",
                                  url="http://%s/" % name, server=OPENED[name])
        # Only the opened addresses were ever connected to.
        self.assertEqual(px.stop(), 0)
        accepted = [l.split()[1] for l in self.sink.lines_out if l.startswith("accept")]
        self.assertEqual(sorted(accepted), sorted(OPENED.values()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
