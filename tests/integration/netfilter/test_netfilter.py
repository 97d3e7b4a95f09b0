"""`awf-proxy netfilter` against real iptables, in network namespaces the tests create.

Every namespace (and the veth pair between two of them) is deleted by a cleanup registered when
it is created, so nothing outlives a failed test. Only addresses inside those namespaces are used
(loopback, 10.200.x.y on the veth pair). Needs root, `ip`, iptables-save/-restore: skips without
them, fails under CI=true.
"""

import os
import queue
import re
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import awf  # noqa: E402

RUN_TIMEOUT = 60  # upper bound for one iptables call; never an assertion on speed

# Rules of someone else (Docker's DNS for 127.0.0.11, a host filter), present before we apply:
# they must survive apply and remove untouched, and they make each table exist beforehand.
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

AGENT_ARGS = ["--proxy", "172.30.0.10:3128", "--proxy", "[fd00::10]:3128", "--agent-ip",
              "172.30.0.20", "--dns", "8.8.8.8,2001:4860:4860::8888", "--sidecar", "172.30.0.30",
              "--redirect", "8443=3129"]

_counter = [0]


def normalize(save):
    """iptables-save output without its dated comments and with counters zeroed."""
    out = []
    for line in save.splitlines():
        if line.startswith("#"):
            continue
        out.append(re.sub(r"\[\d+:\d+\]$", "[0:0]", line))
    return "\n".join(out) + "\n"


def split_print(text):
    """print's output as {(family, table): restore text} ("iptables"/"ip6tables")."""
    parts, key = {}, None
    for line in text.splitlines(keepends=True):
        m = re.match(r"# (ip6?tables) \(IPv[46]\) table (\w+)$", line)
        if m:
            key = (m.group(1), m.group(2))
            parts[key] = ""
        elif line.startswith("#"):
            key = None
        elif key:
            parts[key] += line
    return parts


class NetfilterCase(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            if awf.CI:
                raise AssertionError("netfilter tests need root (CI=true: not skipped)")
            raise unittest.SkipTest("netfilter tests need root")
        self.ip = awf.need_tool("ip")
        for t in ("iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"):
            awf.need_tool(t)
        self.binary = awf.proxy_binary()
        self.tmp = tempfile.mkdtemp(prefix="awf-nf-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.tmp])

    # ------------------------------------------------------------ namespaces

    def netns(self, baseline=True):
        _counter[0] += 1
        name = "awfnf%d_%d" % (os.getpid(), _counter[0])
        r = subprocess.run([self.ip, "netns", "add", name], capture_output=True, text=True)
        if r.returncode != 0:
            msg = "cannot create a network namespace: " + r.stderr.strip()
            if awf.CI:
                raise AssertionError(msg)
            raise unittest.SkipTest(msg)
        self.addCleanup(subprocess.run, [self.ip, "netns", "del", name], capture_output=True)
        self.ns_run(name, [self.ip, "link", "set", "lo", "up"])
        if baseline:
            self.ns_run(name, ["iptables-restore", "--noflush"], stdin=BASELINE_V4)
            self.ns_run(name, ["ip6tables-restore", "--noflush"], stdin=BASELINE_V6)
        return name

    def ns_run(self, ns, cmd, stdin=None, check=True, env=None):
        full = [self.ip, "netns", "exec", ns] + cmd
        r = subprocess.run(full, input=stdin, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT, env=awf.clean_env(env))
        if check and r.returncode != 0:
            self.fail("%s: exit %d\n%s" % (" ".join(cmd), r.returncode, r.stderr))
        return r

    def nf(self, ns, *args, env=None):
        return self.ns_run(ns, [self.binary, "netfilter"] + list(args), check=False, env=env)

    def save(self, ns):
        return (normalize(self.ns_run(ns, ["iptables-save"]).stdout),
                normalize(self.ns_run(ns, ["ip6tables-save"]).stdout))

    def save_table(self, ns, family, table):
        return normalize(self.ns_run(ns, [family + "-save", "-t", table]).stdout)

    def failing_tool(self, name, when):
        """A directory holding a wrapper for tool `name` that fails when its stdin contains
        `when` and it was called with --noflush (an apply, not a rollback); otherwise it runs
        the real tool. Put first in PATH to force a failure part way through an apply."""
        d = os.path.join(self.tmp, "bin-" + name)
        os.makedirs(d, exist_ok=True)
        real = awf.need_tool(name)
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n"
                    "in=$(cat)\n"
                    "case \" $* \" in *\" --noflush \"*) case \"$in\" in *'%s'*)\n"
                    "  echo 'forced failure for the test' >&2; exit 1;; esac;; esac\n"
                    "printf '%%s\\n' \"$in\" | %s \"$@\"\n" % (when, real))
        os.chmod(path, stat.S_IRWXU)
        return {"PATH": d + ":" + os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}


class TestApply(NetfilterCase):
    def test_netfilter_apply_loads_what_print_shows(self):
        ns = self.netns()
        before4, before6 = self.save(ns)
        printed = self.nf(ns, "print", *AGENT_ARGS)
        self.assertEqual(printed.returncode, 0, printed.stderr)
        audit = os.path.join(self.tmp, "audit.txt")
        r = self.nf(ns, "apply", "--audit-file", audit, *AGENT_ARGS)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(audit) as f:
            self.assertEqual(f.read(), printed.stdout)

        parts = split_print(printed.stdout)
        self.assertEqual(sorted(parts), [("ip6tables", "filter"), ("ip6tables", "nat"),
                                         ("iptables", "filter"), ("iptables", "nat")])
        for (family, table), text in parts.items():
            saved = self.save_table(ns, family, table)
            chain = "AWF_OUTPUT" if table == "filter" else "AWF_NAT"
            # the kernel holds exactly the printed rules, in order, byte for byte
            want = [ln for ln in text.splitlines() if ln.startswith("-A " + chain + " ")]
            got = [ln for ln in saved.splitlines() if ln.startswith("-A " + chain + " ")]
            self.assertEqual(got, want, "%s %s" % (family, table))
            self.assertIn(":%s - [0:0]" % chain, saved)
            # our jump is the first rule of OUTPUT, and there is exactly one
            output = [ln for ln in saved.splitlines() if ln.startswith("-A OUTPUT ")]
            self.assertEqual(output[0], "-A OUTPUT -j " + chain)
            self.assertEqual(output.count("-A OUTPUT -j " + chain), 1)
        # the rules that were there before are all still there
        after4, after6 = self.save(ns)
        for before, after in ((before4, after4), (before6, after6)):
            for line in before.splitlines():
                if line.startswith("-A "):
                    self.assertIn(line, after.splitlines())

    def test_netfilter_apply_twice_equals_once(self):
        ns = self.netns()
        self.assertEqual(self.nf(ns, "apply", *AGENT_ARGS).returncode, 0)
        once = self.save(ns)
        # print now knows the jumps are there: apply would not add them again
        again = self.nf(ns, "print", *AGENT_ARGS).stdout
        self.assertNotIn("-I OUTPUT", again)
        r = self.nf(ns, "apply", *AGENT_ARGS)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.save(ns), once)

    def test_netfilter_reapply_with_other_options_replaces_rules(self):
        ns = self.netns()
        self.assertEqual(self.nf(ns, "apply", *AGENT_ARGS).returncode, 0)
        r = self.nf(ns, "apply", "--proxy", "172.30.0.11:3128", "--ipv6", "on")
        self.assertEqual(r.returncode, 0, r.stderr)
        nat = self.save_table(ns, "iptables", "nat")
        self.assertIn("--to-destination 172.30.0.11:3128", nat)
        self.assertNotIn("172.30.0.10", nat)
        self.assertNotIn("8443", nat)

    def test_netfilter_remove_restores_exactly(self):
        ns = self.netns()
        before = self.save(ns)
        self.assertEqual(self.nf(ns, "apply", *AGENT_ARGS).returncode, 0)
        self.assertNotEqual(self.save(ns), before)
        r = self.nf(ns, "remove", *AGENT_ARGS)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.save(ns), before)
        # a second remove finds nothing and changes nothing
        r = self.nf(ns, "remove")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("nothing to remove", r.stdout)
        self.assertEqual(self.save(ns), before)

    def test_netfilter_failed_apply_rolls_back(self):
        ns = self.netns()
        before = self.save(ns)
        # iptables filter loads, then iptables nat fails: filter must be put back
        env = self.failing_tool("iptables-restore", "*nat")
        r = self.nf(ns, "apply", *AGENT_ARGS, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertTrue(r.stderr.startswith("awf-proxy: netfilter: "), r.stderr)
        self.assertIn("rolled back", r.stderr)
        self.assertIn("forced failure", r.stderr)
        self.assertEqual(self.save(ns), before)

    def test_netfilter_failed_reapply_keeps_previous_rules(self):
        ns = self.netns()
        self.assertEqual(self.nf(ns, "apply", *AGENT_ARGS).returncode, 0)
        applied = self.save(ns)
        # both IPv4 tables load, then IPv6 filter fails: IPv4 goes back to the first apply
        env = self.failing_tool("ip6tables-restore", "*filter")
        r = self.nf(ns, "apply", "--proxy", "172.30.0.11:3128", env=env)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("rolled back", r.stderr)
        self.assertEqual(self.save(ns), applied)

    def test_netfilter_bad_input_applies_nothing(self):
        ns = self.netns()
        before = self.save(ns)
        bad = [
            ["--proxy", "172.30.0.300:3128"],
            ["--proxy", "172.30.0.10:0"],
            ["--proxy-ports", "70000"],
            ["--proxy-ports", "22"],
            ["--redirect", "3306=3129"],
            ["--dns", "not-an-address"],
            ["--agent-ip", "172.30.0.20/24"],
            ["--dns", "8.8.8.8", "--dns-forwarder", "172.30.0.10:53"],
            ["--side", "sideways"],
            ["--ipv6", "maybe"],
            ["--no-such-option"],
        ]
        for args in bad:
            r = self.nf(ns, "apply", *args)
            self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stderr))
            self.assertTrue(r.stderr.startswith("awf-proxy: netfilter: "), r.stderr)
        r = self.nf(ns, "frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(self.save(ns), before)

    def test_netfilter_host_side(self):
        ns = self.netns()
        # Docker's DOCKER-USER, in IPv4 only: IPv6 is then reached from FORWARD
        self.ns_run(ns, ["iptables-restore", "--noflush"],
                    stdin="*filter\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\n"
                          "-A DOCKER-USER -j RETURN\nCOMMIT\n")
        before = self.save(ns)
        args = ["--side", "host", "--proxy", "172.30.0.10:3128", "--proxy", "[fd00::10]:3128",
                "--dns-forwarder", "172.30.0.10:53"]
        printed = self.nf(ns, "print", *args).stdout
        self.assertNotIn("table nat", printed)
        r = self.nf(ns, "apply", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        f4 = self.save_table(ns, "iptables", "filter").splitlines()
        self.assertEqual([ln for ln in f4 if ln.startswith("-A DOCKER-USER")][0],
                         "-A DOCKER-USER -i fw-bridge -j FW_WRAPPER")
        f6 = self.save_table(ns, "ip6tables", "filter").splitlines()
        self.assertEqual([ln for ln in f6 if ln.startswith("-A FORWARD")][0],
                         "-A FORWARD -i fw-bridge -j FW_WRAPPER")
        parts = split_print(printed)
        for family, lines in (("iptables", f4), ("ip6tables", f6)):
            want = [ln for ln in parts[(family, "filter")].splitlines()
                    if ln.startswith("-A FW_WRAPPER ")]
            self.assertEqual([ln for ln in lines if ln.startswith("-A FW_WRAPPER ")], want)
        self.assertEqual(self.nf(ns, "apply", *args).returncode, 0)
        r = self.nf(ns, "remove", "--side", "host")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.save(ns), before)


class TestIPv6Fallback(NetfilterCase):
    def disable_ipv6(self, ns):
        return [self.ns_run(ns, ["cat", "/proc/sys/net/ipv6/conf/%s/disable_ipv6" % k]).stdout
                .strip() for k in ("all", "default")]

    def test_netfilter_ipv6_off_uses_sysctl(self):
        if not os.path.exists("/proc/sys/net/ipv6"):
            self.skipTest("no IPv6 in this kernel")
        ns = self.netns()
        before6 = self.save(ns)[1]
        r = self.nf(ns, "apply", "--ipv6", "off")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("IPv6 disabled by sysctl", r.stdout)
        self.assertEqual(self.disable_ipv6(ns), ["1", "1"])
        self.assertEqual(self.save(ns)[1], before6)

    def test_netfilter_ipv6_auto_without_ip6tables(self):
        if not os.path.exists("/proc/sys/net/ipv6"):
            self.skipTest("no IPv6 in this kernel")
        ns = self.netns()
        d = os.path.join(self.tmp, "bin-no6")
        os.makedirs(d)
        with open(os.path.join(d, "ip6tables-save"), "w") as f:
            f.write("#!/bin/sh\necho 'ip6tables: no IPv6 here' >&2\nexit 1\n")
        os.chmod(os.path.join(d, "ip6tables-save"), stat.S_IRWXU)
        env = {"PATH": d + ":" + os.environ.get("PATH", "/usr/sbin:/usr/bin")}
        printed = self.nf(ns, "print", env=env)
        self.assertIn("IPv6 is disabled by sysctl", printed.stdout)
        self.assertNotIn("ip6tables (IPv6)", printed.stdout)
        r = self.nf(ns, "apply", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ip6tables cannot be used", r.stdout)
        self.assertEqual(self.disable_ipv6(ns), ["1", "1"])
        # --ipv6 on insists: an error, and nothing applied
        before = self.save(ns)
        r = self.nf(ns, "apply", "--ipv6", "on", "--proxy", "172.30.0.11:3128", env=env)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(self.save(ns), before)


# A tiny server for the proxy's namespace: accepts on each TCP port and receives on each UDP
# port given, printing "tcp PORT DATA" / "udp PORT DATA" per connection or datagram.
SERVER = r"""
import selectors, socket, sys
sel = selectors.DefaultSelector()
addr = sys.argv[1]
for spec in sys.argv[2:]:
    kind, port = spec.split(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
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
            data = c.recv(100)
            print("tcp", port, data.decode(), flush=True)
            c.close()
        else:
            data, _ = key.fileobj.recvfrom(512)
            print("udp", port, data.decode(), flush=True)
"""

# Run in the agent's namespace: one probe, result on stdout.
PROBE = r"""
import os, socket, struct, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if kind == "tcp":
        s = socket.create_connection((host, port), timeout=3)
        s.sendall(b"hello-%d" % port)
        s.close()
        print("connected")
    elif kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"query-%d" % port, (host, port))
        print("sent")
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        s.settimeout(3)
        body = struct.pack("!BBHHH", 8, 0, 0, os.getpid() & 0xFFFF, 1) + b"awf"
        csum = 0
        for i in range(0, len(body) - 1, 2):
            csum += (body[i] << 8) + body[i + 1]
        csum += body[-1] << 8 if len(body) % 2 else 0
        csum = (csum >> 16) + (csum & 0xFFFF)
        csum = ~(csum + (csum >> 16)) & 0xFFFF
        s.sendto(body[:2] + struct.pack("!H", csum) + body[4:], (host, 0))
        while True:
            data, _ = s.recvfrom(512)
            if data[20] == 0:
                print("pong")
                break
except OSError as e:
    print("failed", e.__class__.__name__, e)
"""


class TestTraffic(NetfilterCase):
    """An agent namespace joined by a veth pair to a proxy namespace."""

    # PEER is another address of the proxy's namespace: a "server on the internet" (traffic to
    # the proxy's own address is never redirected, as in AWF)
    AGENT, PROXY, PEER = "10.200.1.1", "10.200.1.2", "10.200.1.3"

    def setUp(self):
        super().setUp()
        self.agent = self.netns(baseline=False)
        self.proxy = self.netns(baseline=False)
        va, vp = "nfa%d" % _counter[0], "nfp%d" % _counter[0]
        self.ns_run(self.agent, [self.ip, "link", "add", va, "type", "veth", "peer", "name", vp,
                                 "netns", self.proxy])
        self.ns_run(self.agent, [self.ip, "addr", "add", self.AGENT + "/24", "dev", va])
        self.ns_run(self.agent, [self.ip, "link", "set", va, "up"])
        self.ns_run(self.proxy, [self.ip, "addr", "add", self.PROXY + "/24", "dev", vp])
        self.ns_run(self.proxy, [self.ip, "addr", "add", self.PEER + "/24", "dev", vp])
        self.ns_run(self.proxy, [self.ip, "link", "set", vp, "up"])
        cmd = [self.ip, "netns", "exec", self.proxy, sys.executable, "-c", SERVER, "0.0.0.0",
               "tcp:3128", "tcp:9999", "udp:5353"]
        self.server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                       text=True, preexec_fn=awf._die_with_parent)
        self.addCleanup(self.stop_server)
        self.lines = queue.Queue()
        self.pump_thread = threading.Thread(target=self.pump, daemon=True)
        self.pump_thread.start()
        self.assertEqual(self.server_line(), ["ready"])

    def pump(self):
        for line in self.server.stdout:
            self.lines.put(line.split())

    def server_line(self):
        """The server's next line, split; fails (instead of hanging) if none comes."""
        try:
            return self.lines.get(timeout=awf.WAIT)
        except queue.Empty:
            self.fail("the server in the proxy namespace reported nothing")

    def stop_server(self):
        self.server.kill()
        self.server.wait()
        self.pump_thread.join(awf.WAIT)
        self.server.stdout.close()

    def probe(self, kind, host, port=0):
        return self.ns_run(self.agent, [sys.executable, "-c", PROBE, kind, host,
                                        str(port)]).stdout.strip()

    def test_netfilter_traffic(self):
        # before: everything reaches the peer, so the checks below mean something
        self.assertEqual(self.probe("tcp", self.PEER, 9999), "connected")
        self.assertEqual(self.server_line()[:2], ["tcp", "9999"])
        self.assertEqual(self.probe("icmp", self.PEER), "pong")

        r = self.nf(self.agent, "apply", "--proxy", self.PROXY + ":3128", "--agent-ip",
                    self.AGENT, "--dns-forwarder", self.PROXY + ":5353", "--ipv6", "on")
        self.assertEqual(r.returncode, 0, r.stderr)

        # a port that is neither redirected nor the proxy's: dropped
        self.assertTrue(self.probe("tcp", self.PEER, 9999).startswith("failed"))
        # ping: dropped (finding L1)
        self.assertTrue(self.probe("icmp", self.PEER).startswith("failed"))
        # port 80 to the peer's address lands on the proxy's listener
        self.assertEqual(self.probe("tcp", self.PEER, 80), "connected")
        self.assertEqual(self.server_line(), ["tcp", "3128", "hello-80"])
        # a DNS query to any resolver lands on the forwarder
        self.assertEqual(self.probe("udp", "10.200.1.99", 53), "sent")
        self.assertEqual(self.server_line(), ["udp", "5353", "query-53"])
        # and the rules go away again
        self.assertEqual(self.nf(self.agent, "remove").returncode, 0)
        self.assertEqual(self.probe("tcp", self.PEER, 9999), "connected")
        self.assertEqual(self.server_line()[:2], ["tcp", "9999"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
