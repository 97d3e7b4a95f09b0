"""containers/agent-init/entrypoint.sh (awf-agent-init) in a fresh network namespace: AWF's
setup-iptables.sh inputs in, `awf-proxy netfilter apply` out, the ruleset in the kernel and in
the audit file.

Each test runs the entrypoint as root in new mount+network+PID namespaces with an "eth0" (one end
of a veth pair inside the namespace, 172.30.0.20/24 as AWF's agent), then reads the kernel's
tables with iptables-save in the same namespace. The namespace and its rules vanish with it.

With AWF_IMAGE_AGENT_INIT naming the really built image (CTest's it_containers_agent_init_image,
issue 11), the same tests run chrooted in a root of that image: its awf-agent-init (and
setup-iptables.sh), its awf-proxy, its iptables-restore and iptables-save.
"""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import images  # noqa: E402
import ns  # noqa: E402

awf = ns.awf

# The environment AWF's compose file gives its awf-iptables-init container.
AWF_ENV = {
    "SQUID_PROXY_HOST": "172.30.0.10",
    "SQUID_PROXY_PORT": "3128",
    "AWF_DNS_SERVERS": "8.8.8.8,8.8.4.4",
    "AWF_BLOCKED_PORTS": "",
    "AWF_ENABLE_HOST_ACCESS": "",
    "AWF_ALLOW_HOST_PORTS": "",
    "AWF_HOST_SERVICE_PORTS": "",
    "AWF_API_PROXY_IP": "",
    "AWF_DOH_PROXY_IP": "",
    "AWF_CLI_PROXY_IP": "",
    "AWF_SSL_BUMP_ENABLED": "",
    "AWF_SSL_BUMP_INTERCEPT_PORT": "",
}

ETH0 = ["ip link add eth0 type veth peer name awfpeer0",
        "ip addr add 172.30.0.20/24 dev eth0", "ip link set eth0 up",
        "ip link set awfpeer0 up", "ip route add default via 172.30.0.1 dev eth0"]

IMAGE = images.image_under_test("agent-init")

DNAT = "-A AWF_NAT -p tcp -m tcp --dport %d -j DNAT --to-destination 172.30.0.10:3128"


class AgentInitTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        ns.need_root()
        (self.init,) = ns.make_tree(self, "init")
        if IMAGE:
            images.need_tools()
            self.root = images.container_root(self, IMAGE)
            self.ep = "/usr/local/bin/awf-agent-init"
            return
        for tool in ("iptables-save", "iptables-restore", "ip6tables-save"):
            awf.need_tool(tool)
        self.root, self.ep = None, ns.INIT_ENTRYPOINT

    def container(self, argv, mounts=None, **kw):
        """ns.ns_command in the image's root when testing the image (the test's directory
        bound at the same path inside: the init directory, the iptables-save output)."""
        mounts = dict(mounts or {})
        if IMAGE:
            mounts[self.tmp] = self.tmp
        return ns.ns_command(argv, mounts=mounts, root=self.root, **kw)

    def run_init(self, env=None, action="apply", then_save=True, mounts=None, ep=None):
        """Runs awf-agent-init ACTION (ep: the script's path, in the image one of its names) in
        a fresh namespace. Returns (exit code, stderr, iptables-save text after it,
        ip6tables-save text)."""
        e = dict(AWF_ENV)
        e.update(env or {})
        e["AWF_INIT_DIR"] = self.init
        if not IMAGE:
            e["AWF_PROXY_BIN"] = awf.proxy_binary()
        save4, save6 = os.path.join(self.tmp, "save4"), os.path.join(self.tmp, "save6")
        script = 'sh "$0" %s; rc=$?; ' % action
        if then_save:
            script += 'iptables-save > %s; ip6tables-save > %s; ' % (save4, save6)
        script += "exit $rc"
        cmd = self.container(["sh", "-c", script, ep or self.ep], setup=ETH0, mounts=mounts)
        p = subprocess.run(cmd, capture_output=True, text=True, env=awf.clean_env(e),
                           timeout=120, preexec_fn=awf._die_with_parent)
        out = []
        for path in (save4, save6):
            try:
                with open(path) as f:
                    out.append(f.read())
            except FileNotFoundError:
                out.append("")
        self.assertNotRegex(p.stderr, awf.SANITIZER)
        return p.returncode, p.stderr + p.stdout, out[0], out[1]

    def audit(self):
        with open(os.path.join(self.init, "iptables-audit.txt")) as f:
            return f.read()

    def ready(self):
        return os.path.exists(os.path.join(self.init, "ready"))

    def assertLoaded(self, audit, save4):
        """Every IPv4 rule in the audit file is in the kernel, as iptables-save prints it."""
        section, rules = None, []
        for line in audit.splitlines():
            m = re.match(r"# (ip6?tables) \(IPv[46]\) table (\w+)$", line)
            if m:
                section = m.group(1)
            elif section == "iptables" and line.startswith("-A "):
                rules.append(line)
        self.assertTrue(rules, audit)
        kernel = set(save4.splitlines())
        missing = [r for r in rules if r not in kernel]
        self.assertEqual(missing, [], "audited rules not in the kernel:\n" + save4)

    def test_applies_awf_defaults(self):
        rc, err, save4, save6 = self.run_init()
        self.assertEqual(rc, 0, err)
        self.assertTrue(self.ready(), "no ready file")
        audit = self.audit()
        self.assertLoaded(audit, save4)
        for rule in (DNAT % 80, DNAT % 443,
                     "-A AWF_NAT -d 172.30.0.20/32 -j RETURN",  # the agent's eth0 address
                     "-A AWF_NAT -d 172.30.0.10/32 -j RETURN",
                     "-A AWF_NAT -d 8.8.8.8/32 -p udp -m udp --dport 53 -j RETURN",
                     "-A AWF_OUTPUT -d 8.8.4.4/32 -p tcp -m tcp --dport 53 -j ACCEPT",
                     "-A AWF_OUTPUT -d 172.30.0.10/32 -p tcp -m tcp --dport 3128 -j ACCEPT",
                     "-A OUTPUT -j AWF_NAT", "-A OUTPUT -j AWF_OUTPUT"):
            self.assertIn(rule, save4.splitlines())
        self.assertIn("-A OUTPUT -j AWF_OUTPUT", save6.splitlines())  # IPv6 is not left open
        self.assertIn("--audit-file", err)

    def test_awf_inputs_become_options(self):
        rc, err, save4, _ = self.run_init({
            "AWF_ALLOW_HOST_PORTS": "3000, 8080-8082,3304-3307",
            "AWF_BLOCKED_PORTS": "8081",
            "AWF_API_PROXY_IP": "172.30.0.30",
            "AWF_CLI_PROXY_IP": "172.30.0.50",
            "AWF_DNS_SERVERS": " 1.1.1.1 ",
            "AWF_SSL_BUMP_ENABLED": "true",
        })
        self.assertEqual(rc, 0, err)
        lines = save4.splitlines()
        self.assertLoaded(self.audit(), save4)
        for port in (3000, 8080, 8082, 3304, 3305, 3307):
            self.assertIn(DNAT % port, lines)
        # Blocked ports inside a range stay blocked: 3306 (SPEC list), 8081 (AWF_BLOCKED_PORTS).
        for port in (3306, 8081):
            self.assertNotIn(DNAT % port, lines)
        self.assertIn("-A AWF_NAT -p tcp -m multiport --dports 8081 -j RETURN", lines)
        self.assertIn("-A AWF_OUTPUT -p tcp -m multiport --dports 8081 -j DROP", lines)
        for sidecar in ("172.30.0.30", "172.30.0.50"):
            self.assertIn("-A AWF_OUTPUT -d %s/32 -p tcp -j ACCEPT" % sidecar, lines)
            self.assertIn("-A AWF_NAT -d %s/32 -j RETURN" % sidecar, lines)
        self.assertIn("-A AWF_OUTPUT -d 1.1.1.1/32 -p udp -m udp --dport 53 -j ACCEPT", lines)
        self.assertNotIn("8.8.8.8", save4)
        self.assertIn("SSL bump settings ignored", err)

    def test_host_access_doh_and_validated_ports(self):
        hosts = self.write("hosts", "127.0.0.1 localhost\n")  # no host.docker.internal
        rc, err, save4, _ = self.run_init({
            "AWF_ENABLE_HOST_ACCESS": "1",
            "AWF_HOST_GATEWAY_IP": "172.17.0.1",
            "AWF_DOH_ENABLED": "true",
            "AWF_DOH_PROXY_IP": "172.30.0.40",
            "AWF_ALLOW_HOST_PORTS": "not used when the validated list is set",
            "AWF_VALID_ALLOW_HOST_PORTS": "4000",
            "AWF_HOST_SERVICE_PORTS": "5432,9000-9002",
        }, mounts={"/etc/hosts": hosts})
        self.assertEqual(rc, 0, err)
        lines = save4.splitlines()
        # The host gateway is reached directly, but only on 80, 443 and the named ports, as
        # AWF's setup-iptables.sh allows; not every tcp port of the host.
        self.assertNotIn("-A AWF_OUTPUT -d 172.17.0.1/32 -p tcp -j ACCEPT", lines)
        gw = ["-A AWF_OUTPUT -d 172.17.0.1/32 -p tcp -m tcp --dport %s -j ACCEPT" % p
              for p in ("80", "443", "4000", "5432", "9000:9002")]
        self.assertEqual([l for l in lines if l.startswith("-A AWF_OUTPUT -d 172.17.0.1/32")],
                         gw)
        self.assertIn("-A AWF_NAT -d 172.17.0.1/32 -j RETURN", lines)
        # The network's default gateway gets the same (AWF: Codex resolves the host there).
        self.assertIn("-A AWF_OUTPUT -d 172.30.0.1/32 -p tcp -m tcp --dport 4000 -j ACCEPT",
                      lines)
        self.assertIn("-A AWF_OUTPUT -d 172.30.0.40/32 -p udp -m udp --dport 53 -j ACCEPT", lines)
        self.assertNotIn("8.8.8.8", save4)
        self.assertIn(DNAT % 4000, lines)

    def test_help(self):
        # `docker run IMAGE --help`: the entrypoint's help, without needing awf-proxy.
        argv = [self.ep, "--help"] if IMAGE else ["sh", ns.INIT_ENTRYPOINT, "--help"]
        if IMAGE:
            argv = self.container(argv)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                           env=awf.clean_env({"AWF_PROXY_BIN": "/bin/false"}))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Usage: awf-agent-init [apply|print|remove]", p.stdout)

    def test_dns_forwarder(self):
        rc, err, save4, _ = self.run_init({"AWF_DNS_FORWARDER": "172.30.0.10:53"})
        self.assertEqual(rc, 0, err)
        lines = save4.splitlines()
        self.assertIn("-A AWF_NAT -p udp -m udp --dport 53 -j DNAT --to-destination "
                      "172.30.0.10:53", lines)
        self.assertNotIn("8.8.8.8", save4)

    def test_proxy_name_is_resolved(self):
        hosts = self.write("hosts", "127.0.0.1 localhost\n172.30.0.10 squid-proxy\n")
        rc, err, save4, _ = self.run_init({"SQUID_PROXY_HOST": "squid-proxy"},
                                          mounts={"/etc/hosts": hosts})
        self.assertEqual(rc, 0, err)
        self.assertIn(DNAT % 443, save4.splitlines())

    def test_unresolvable_proxy_applies_nothing(self):
        hosts = self.write("hosts", "127.0.0.1 localhost\n")
        rc, err, save4, _ = self.run_init({"SQUID_PROXY_HOST": "no-such-proxy.invalid"},
                                          mounts={"/etc/hosts": hosts})
        self.assertEqual(rc, 2, err)
        self.assertIn("cannot resolve the proxy's name \"no-such-proxy.invalid\"", err)
        self.assertNotIn("AWF_", save4)
        self.assertFalse(self.ready())

    def test_bad_input_applies_nothing(self):
        for env, msg in (({"AWF_ALLOW_HOST_PORTS": "22"}, "dangerous"),
                         ({"AWF_ALLOW_HOST_PORTS": "9000-8000"}, "not a port range"),
                         ({"AWF_ALLOW_HOST_PORTS": "1-5000"}, "wider than"),
                         ({"AWF_ALLOW_HOST_PORTS": "08-10"}, "not a port range"),
                         ({"AWF_ALLOW_HOST_PORTS": "3000,99999"}, "\"99999\" is not a port"),
                         ({"SQUID_PROXY_PORT": "http"}, "is not a port"),
                         ({"AWF_BLOCKED_PORTS": "x"}, "is not a port")):
            with self.subTest(env=env):
                rc, err, save4, _ = self.run_init(env)
                self.assertEqual(rc, 2, err)
                self.assertIn(msg, err)
                self.assertNotIn("AWF_", save4)
                self.assertFalse(self.ready())

    def test_print_changes_nothing(self):
        rc, err, save4, _ = self.run_init(action="print")
        self.assertEqual(rc, 0, err)
        self.assertIn(DNAT % 443, err)  # printed (stdout is folded into err here)
        self.assertNotIn("AWF_", save4)
        self.assertFalse(os.path.exists(os.path.join(self.init, "iptables-audit.txt")))

    def test_apply_then_remove(self):
        rc, err, save4, _ = self.run_init(action="apply && sh \"$0\" remove")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("AWF_", save4)

    def test_runs_under_awfs_init_command(self):
        """AWF's compose runs `/usr/local/bin/setup-iptables.sh > output.log 2>&1 && touch
        ready`; the image links that name to awf-agent-init."""
        rc, err, save4, _ = self.run_init(
            action='> "$AWF_INIT_DIR/output.log" 2>&1 && touch "$AWF_INIT_DIR/ready"',
            ep="/usr/local/bin/setup-iptables.sh" if IMAGE else None)
        self.assertEqual(rc, 0, err)
        self.assertTrue(self.ready())
        with open(os.path.join(self.init, "output.log")) as f:
            self.assertIn("firewall applied", f.read())
        self.assertIn(DNAT % 80, save4.splitlines())


if __name__ == "__main__":
    unittest.main(verbosity=2)
