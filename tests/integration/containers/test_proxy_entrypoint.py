"""containers/proxy/entrypoint.sh, run as the container would run it: as root, PID 1 of fresh
mount, network and PID namespaces, with temporary directories bind-mounted over /var/log/squid and
/etc/squid (never the host's) and the environment AWF gives the awf-squid container.

Most tests exec a stub of their own in place of awf-proxy (AWF_PROXY_BIN), which records what it
was started with: argv, uid/gid, groups, capabilities, PID, environment. The entrypoint is started
the three ways it meets: as root (older AWF), as uid 13 (the image's USER proxy), and by AWF's
current compose command (as root, which su's to proxy and execs /usr/local/bin/entrypoint.sh).
The ProxyRealTest class runs the real binary: the healthcheck, the logs as uid 13, SIGTERM.

The same tests run against the really built image (issue 11) when AWF_IMAGE_PROXY names it
(CTest's it_containers_proxy_image, after the image_build fixture): each test then gets a root of
that image of its own (images.container_root) and runs chrooted there, with the image's
entrypoint at /usr/local/bin/entrypoint.sh, its awf-proxy (Release), its sh, bash, su, setpriv,
base64 and nc; the test's directory is bound at the same path inside for the stub.
"""

import base64
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import images  # noqa: E402
import ns  # noqa: E402

awf = ns.awf

SQUID_CONF = """\
http_port 3128
http_port [::]:3128
acl allowed_domains dstdomain .allowed.test
acl Safe_ports port 80
acl Safe_ports port 443
acl CONNECT method CONNECT
http_access deny !Safe_ports
http_access deny CONNECT !Safe_ports
http_access allow allowed_domains
http_access deny all
dns_nameservers 127.0.0.1
logformat firewall_detailed %ts.%03tu %>a:%>p %{Host}>h %<a:%<p %rv %rm %>Hs %Ss:%Sh %ru "%{User-Agent}>h"
access_log /var/log/squid/access.log firewall_detailed
cache_log /var/log/squid/cache.log
cache deny all
"""

STUB = """\
#!/bin/sh
# Stands in for awf-proxy: records how the entrypoint started it, then exits.
out=/var/log/squid/stub.out
{
  echo "pid=$$"
  echo "uid=$(id -u)"
  echo "gid=$(id -g)"
  echo "groups=$(id -G)"
  grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status | tr -d '\\t' | sed 's/:/=/'
  for a in "$@"; do echo "arg=$a"; done
  env | sed 's/^/env=/'
} > "$out"
if [ "$1" = --squid-conf ]; then cat "$2" > /var/log/squid/conf.seen; fi
"""


# AWF's compose entrypoint for the squid service (src/services/squid-service.ts, with compose's $$
# already turned into $), as AWF v0.23 writes it: started as 0:0, it repairs the mounted log
# directory, drops to proxy with su and execs the image's entrypoint.sh.
AWF_COMMAND = (
    "chown proxy:proxy /var/log/squid 2>/dev/null || chmod 0777 /var/log/squid; "
    "if [ -d /var/spool/squid_ssl_db ]; then chown proxy:proxy /var/spool/squid_ssl_db "
    "2>/dev/null || chmod 0777 /var/spool/squid_ssl_db; fi && exec su -s /bin/bash proxy -c "
    "'echo \"$AWF_SQUID_CONFIG_B64\" | base64 -d > /etc/squid/squid.conf && "
    "exec /usr/local/bin/entrypoint.sh'")

AS_PROXY = ["setpriv", "--reuid=13", "--regid=13", "--clear-groups"]

IMAGE = images.image_under_test("proxy")
GATEWAY = "172.17.0.1"  # Docker's host gateway: AWF's host.docker.internal
# What Docker gives a container of the image besides the compose file's environment.
CONTAINER_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                 "HOME": "/root", "HOSTNAME": "awf-squid"}
REAL = object()  # run_entrypoint(bin=REAL): the real awf-proxy (the image's, or the tested build)


def b64(text):
    return base64.b64encode(text.encode()).decode()


class EntrypointCase(awf.TestCase):
    def setUp(self):
        super().setUp()
        ns.need_root()
        self.log, self.conf = ns.make_tree(self, "log", "conf")
        self.stub = self.write("stub.sh", STUB)
        os.chmod(self.stub, 0o755)
        if IMAGE:
            images.need_tools()
            self.root = images.container_root(self, IMAGE)
            self.ep = "/usr/local/bin/entrypoint.sh"
            return
        self.root = None
        self.ep = ns.PROXY_ENTRYPOINT
        # Mounted at /usr/local/bin/entrypoint.sh from the test's directory: the overlay that
        # makes the mount point lives beside the source, never in the source tree.
        os.makedirs(os.path.join(self.tmp, "ep"))
        self.ep_copy = os.path.join(self.tmp, "ep", "entrypoint.sh")
        shutil.copy2(ns.PROXY_ENTRYPOINT, self.ep_copy)

    def default_mounts(self):
        m = {"/var/log/squid": self.log, "/etc/squid": self.conf}
        if not IMAGE:
            m["/usr/local/bin/entrypoint.sh"] = self.ep_copy
        return m

    def container(self, argv, env, mounts=None, **kw):
        """(command line, environment for it): ns.ns_command for this test. Testing the image, in
        its root (the test's directory bound at the same path inside, for the stub and the hosts
        file), and with only the environment a runtime gives a container (the image's PATH,
        HOME, HOSTNAME, and env): nothing of this machine's (SSL_CERT_FILE, say) leaks in."""
        mounts = dict(self.default_mounts() if mounts is None else mounts)
        if not IMAGE:
            return ns.ns_command(argv, mounts=mounts, **kw), env
        mounts[self.tmp] = self.tmp
        inside = dict(CONTAINER_ENV)
        inside.update(env)
        argv = ["env", "-i"] + ["%s=%s" % kv for kv in sorted(inside.items())] + list(argv)
        return ns.ns_command(argv, mounts=mounts, root=self.root, **kw), {}

    def proxy_bin_env(self, bin):
        """AWF_PROXY_BIN for bin (None: the stub; REAL: the real awf-proxy, which in the image
        is the image's own, so nothing is set)."""
        if bin is REAL:
            return {} if IMAGE else {"AWF_PROXY_BIN": awf.proxy_binary()}
        return {"AWF_PROXY_BIN": bin or self.stub}

    def run_entrypoint(self, env, bin=None, args=(), mounts=None, argv=None, **kw):
        """Runs the entrypoint (or argv) to completion; returns (exit code, stderr)."""
        e = self.proxy_bin_env(bin)
        e.update(env)
        if argv is None:
            argv = ["/bin/sh", self.ep] + list(args)
        cmd, e = self.container(argv, e, mounts=mounts, **kw)
        p = subprocess.run(cmd, capture_output=True, text=True, env=awf.clean_env(e),
                           timeout=60, preexec_fn=awf._die_with_parent)
        self.last_stdout = p.stdout
        return p.returncode, p.stderr

    def stub_record(self):
        """The stub's record: {key: [values]}."""
        path = os.path.join(self.log, "stub.out")
        self.assertTrue(os.path.exists(path), "the stub did not run")
        rec = {}
        with open(path) as f:
            for line in f.read().splitlines():
                k, _, v = line.partition("=")
                rec.setdefault(k, []).append(v)
        return rec

    def conf_text(self):
        with open(os.path.join(self.conf, "squid.conf")) as f:
            return f.read()


class ConfigTest(EntrypointCase):
    def test_decodes_config_b64(self):
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF), "AWF_IPV6": "on"})
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.conf_text(), SQUID_CONF)
        st = os.stat(os.path.join(self.conf, "squid.conf"))
        # Written by the proxy user, as under AWF's own command (its entrypoint edits it).
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (13, 0o644))
        rec = self.stub_record()
        self.assertEqual(rec["arg"], ["--squid-conf", "/etc/squid/squid.conf"])
        with open(os.path.join(self.log, "conf.seen")) as f:
            self.assertEqual(f.read(), SQUID_CONF, "uid 13 could not read the config")
        self.assertEqual([n for n in os.listdir(self.conf) if n != "squid.conf"], [],
                         "temporary files left behind")

    def test_decodes_wrapped_base64(self):
        enc = base64.encodebytes(SQUID_CONF.encode()).decode()  # lines of 76 characters
        self.assertIn("\n", enc.strip())
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": enc, "AWF_IPV6": "on"})
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.conf_text(), SQUID_CONF)

    def test_bad_base64_is_a_clear_error(self):
        self.write("conf/squid.conf", "http_port 3128\n")  # an older config must stay untouched
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": "not base64 at all!"})
        self.assertEqual(rc, 1, err)
        self.assertIn("AWF_SQUID_CONFIG_B64 is not valid base64", err)
        self.assertEqual(self.conf_text(), "http_port 3128\n")
        self.assertEqual(sorted(os.listdir(self.conf)), ["squid.conf"])
        self.assertFalse(os.path.exists(os.path.join(self.log, "stub.out")), "proxy started")

    def test_empty_config_is_an_error(self):
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": "\n"})  # decodes to nothing
        self.assertEqual(rc, 1, err)
        self.assertIn("AWF_SQUID_CONFIG_B64 decodes to an empty config", err)
        self.assertFalse(os.path.exists(os.path.join(self.log, "stub.out")))

    def test_without_b64_uses_the_mounted_config(self):
        self.write("conf/squid.conf", SQUID_CONF)
        rc, err = self.run_entrypoint({"AWF_IPV6": "on"})
        self.assertEqual(rc, 0, err)
        self.assertIn("using /etc/squid/squid.conf as it is", err)
        self.assertEqual(self.stub_record()["arg"], ["--squid-conf", "/etc/squid/squid.conf"])

    def test_without_any_config_is_an_error(self):
        rc, err = self.run_entrypoint({})
        self.assertEqual(rc, 1, err)
        self.assertIn("AWF_SQUID_CONFIG_B64 is not set and /etc/squid/squid.conf does not exist",
                      err)

    def test_container_arguments_replace_squid_conf(self):
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF)},
                                      args=["--policy", "/etc/awf/policy.yml"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.stub_record()["arg"], ["--policy", "/etc/awf/policy.yml"])


class Ipv6Test(EntrypointCase):
    def test_ipv6_off_drops_the_ipv6_listener(self):
        conf = SQUID_CONF + "  http_port 3129 intercept\nhttp_port [::1]:3130\n"
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": b64(conf)}, ipv6=False)
        self.assertEqual(rc, 0, err)
        text = self.conf_text()
        ports = [l.strip() for l in text.splitlines() if l.strip().startswith("http_port")]
        self.assertEqual(ports, ["http_port 0.0.0.0:3128", "http_port 0.0.0.0:3129 intercept"])
        # Everything else is kept as it was.
        rest = [l for l in text.splitlines() if not l.strip().startswith("http_port")]
        self.assertEqual(rest, [l for l in conf.splitlines()
                                if not l.strip().startswith("http_port")])
        self.assertIn("IPv6 is off", err)

    def test_ipv6_off_drops_a_continued_ipv6_listener(self):
        # AWF's --ssl-bump config writes each listener over several lines joined by a trailing
        # backslash (src/squid/ssl-bump.ts): the [::] listener goes with all its lines.
        opts = ("  cert=/etc/awf/ca-cert.pem \\\n  key=/etc/awf/ca-key.pem \\\n"
                "  generate-host-certificates=on \\\n  options=NO_SSLv3,NO_TLSv1,NO_TLSv1_1\n")
        conf = ("http_port 3128 ssl-bump \\\n" + opts + "http_port [::]:3128 ssl-bump \\\n" +
                opts + "acl allowed_domains dstdomain .allowed.test\nhttp_access deny all\n")
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": b64(conf)}, ipv6=False)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.conf_text(), "http_port 0.0.0.0:3128 ssl-bump \\\n" + opts +
                         "acl allowed_domains dstdomain .allowed.test\nhttp_access deny all\n")

    def test_ipv6_on_keeps_the_listeners(self):
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF)}, ipv6=True)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.conf_text(), SQUID_CONF)

    def test_ipv6_forced_off(self):
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF),
                                       "AWF_IPV6": "off"}, ipv6=True)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("[::]", self.conf_text())

    def test_bad_ipv6_setting(self):
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF),
                                       "AWF_IPV6": "maybe"})
        self.assertEqual(rc, 1, err)
        self.assertIn("AWF_IPV6 must be auto, on or off", err)


class PrivilegeTest(EntrypointCase):
    def test_execs_as_uid_13_without_privileges(self):
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF), "KEEP_ME": "1"})
        self.assertEqual(rc, 0, err)
        rec = self.stub_record()
        self.assertEqual(rec["uid"], ["13"])
        self.assertEqual(rec["gid"], ["13"])
        self.assertEqual(rec["groups"], ["13"])
        for cap in ("CapPrm", "CapEff", "CapAmb"):
            self.assertEqual(int(rec[cap][0], 16), 0, "%s: %s" % (cap, rec[cap]))
        self.assertEqual(rec["NoNewPrivs"], ["1"])
        # exec all the way: the proxy is the container's PID 1 and gets Docker's SIGTERM.
        self.assertEqual(rec["pid"], ["1"])
        env = dict(v.partition("=")[::2] for v in rec["env"])
        self.assertEqual(env.get("KEEP_ME"), "1")
        self.assertNotIn("AWF_SQUID_CONFIG_B64", env, "the config stays in the environment")

    def test_starts_as_uid_13(self):
        """The image's USER proxy: no root at all, the directories are the image's (13:13)."""
        os.chown(self.log, 13, 13)
        os.chown(self.conf, 13, 13)
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF), "AWF_IPV6": "off"},
                                      argv=AS_PROXY + ["/bin/sh", self.ep])
        self.assertEqual(rc, 0, err)
        rec = self.stub_record()
        self.assertEqual((rec["uid"], rec["gid"], rec["pid"]), (["13"], ["13"], ["1"]))
        self.assertEqual(rec["arg"], ["--squid-conf", "/etc/squid/squid.conf"])
        self.assertNotIn("[::]", self.conf_text())  # the IPv6 strip works without root too
        self.assertEqual(os.stat(os.path.join(self.conf, "squid.conf")).st_uid, 13)

    def test_uid_13_with_a_foreign_log_dir_is_a_clear_error(self):
        os.chown(self.conf, 13, 13)
        os.chown(self.log, 1000, 1000)
        os.chmod(self.log, 0o700)
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF)},
                                      argv=AS_PROXY + ["/bin/sh", self.ep])
        self.assertEqual(rc, 1, err)
        self.assertIn("log directory /var/log/squid is not writable by uid 13", err)
        self.assertFalse(os.path.exists(os.path.join(self.log, "stub.out")))

    def test_help_needs_no_config(self):
        # `docker run IMAGE --help`: straight to the binary, as whoever the image runs as.
        rc, err = self.run_entrypoint({}, bin=REAL, argv=AS_PROXY + ["/bin/sh", self.ep, "--help"])
        self.assertEqual(rc, 0, err)
        self.assertRegex(self.last_stdout, r"(?m)^Usage: awf-proxy ")


class AwfComposeTest(EntrypointCase):
    """AWF's compose command, exactly: root, a root-owned log directory (as Docker creates a
    missing bind-mount source on DinD), /etc/squid owned by proxy as in the image."""

    def test_awf_compose_command(self):
        awf.need_tool("su")
        awf.need_tool("bash")
        os.chown(self.conf, 13, 13)
        os.chmod(self.log, 0o755)
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF)}, ipv6=False,
                                      argv=["/bin/bash", "-c", AWF_COMMAND])
        self.assertEqual(rc, 0, err)
        rec = self.stub_record()
        self.assertEqual((rec["uid"], rec["gid"]), (["13"], ["13"]))
        self.assertEqual(rec["arg"], ["--squid-conf", "/etc/squid/squid.conf"])
        # AWF wrote the config as proxy; the entrypoint stripped the IPv6 listener in place.
        self.assertEqual(os.stat(os.path.join(self.conf, "squid.conf")).st_uid, 13)
        self.assertNotIn("[::]", self.conf_text())
        self.assertIn("http_port 0.0.0.0:3128", self.conf_text())
        self.assertEqual(os.stat(self.log).st_uid, 13)


class LogDirTest(EntrypointCase):
    def foreign_log_dir(self):
        """The log directory as the host may mount it: another user's, private, with a file
        left by an earlier run."""
        old = self.write("log/access.log", "earlier line\n")
        os.chmod(old, 0o600)
        os.chown(old, 1000, 1000)
        os.chmod(self.log, 0o700)
        os.chown(self.log, 1000, 1000)
        return old

    def test_gives_the_log_dir_to_uid_13(self):
        old = self.foreign_log_dir()
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF)})
        self.assertEqual(rc, 0, err)
        st = os.stat(self.log)
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (13, 13, 0o755))
        st = os.stat(old)
        self.assertEqual((st.st_uid, st.st_gid), (13, 13))
        self.assertEqual(self.stub_record()["uid"], ["13"])  # and it could write there
        self.assertEqual(os.stat(os.path.join(self.log, "stub.out")).st_uid, 13)

    def test_falls_back_to_mode_0777_without_chown(self):
        # A container without CAP_CHOWN (or a root-squashed/id-mapped mount): chown fails.
        # /etc/squid is the image's, proxy's already.
        os.chown(self.conf, 13, 13)
        old = self.foreign_log_dir()
        rc, err = self.run_entrypoint({"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF)},
                                      drop_caps=["chown"])
        self.assertEqual(rc, 0, err)
        self.assertIn("made it mode 0777", err)
        st = os.stat(self.log)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (1000, 0o777))
        self.assertEqual(stat.S_IMODE(os.stat(old).st_mode) & 0o666, 0o666)
        self.assertEqual(self.stub_record()["uid"], ["13"])

    def test_read_only_log_dir_is_an_error(self):
        os.chown(self.log, 1000, 1000)
        rc, err = self.run_entrypoint(
            {"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF)},
            mounts={"/var/log/squid": (self.log, "ro"), "/etc/squid": self.conf})
        self.assertEqual(rc, 1, err)
        self.assertIn("is not writable by uid 13", err)
        self.assertFalse(os.path.exists(os.path.join(self.log, "stub.out")))


class ProxyRealTest(EntrypointCase):
    """The real awf-proxy behind the entrypoint."""

    def start(self, env, args=(), ipv6=True, argv=None, mounts=None, netns=None):
        e = {}
        if not IMAGE:
            # A copy in the test's world-traversable directory: uid 13 may not reach the build
            # directory (a CI checkout under a private home, say).
            binary = os.path.join(self.tmp, "awf-proxy")
            shutil.copy2(awf.proxy_binary(), binary)
            e["AWF_PROXY_BIN"] = binary
        e.update(env)
        m = self.default_mounts()
        m.update(mounts or {})
        cmd, e = self.container(argv or ["/bin/sh", self.ep] + list(args), e, mounts=m,
                                ipv6=ipv6, netns=netns)
        proc = awf.Proc(self, "container", cmd, env=e)
        pid = ns.ns_pid1(proc)
        self.assertIsNotNone(pid, "the namespace did not start: " + proc.stderr)
        return proc, pid

    def wait_healthy(self, proc, pid):
        """Runs the image's healthcheck (nc -z localhost 3128) in the namespace until it
        passes, as Docker does; fails if the proxy exits first."""
        # In the image: the image's own nc, in the container's root (its /etc/hosts names
        # localhost), as Docker runs the HEALTHCHECK.
        nc = "nc" if IMAGE else awf.need_tool("nc")
        deadline = time.monotonic() + awf.WAIT
        while True:
            r = ns.in_ns(pid, [nc, "-z", "localhost", "3128"], inside=bool(IMAGE))
            if r.returncode == 0:
                return
            if not proc.running() or time.monotonic() > deadline:
                proc.stop(signal.SIGKILL)
                self.fail("the healthcheck never passed (proxy %s; nc: %s):\n%s" % (
                    "exited %s" % proc.p.returncode if not proc.running() else "running",
                    r.stderr.strip(), proc.stderr))
            time.sleep(0.1)

    def check_serves_and_stops(self, proc, pid, log_name):
        # The proxy runs as uid/gid 13 and is PID 1 of the container.
        self.assertEqual(ns.status_field(pid, "Uid").split()[0], "13")
        self.assertEqual(ns.status_field(pid, "Gid").split()[0], "13")
        self.assertEqual(ns.status_field(pid, "NSpid").split()[-1], "1")
        # A denied request is answered and logged as the config/arguments say, by uid 13.
        curl = awf.need_tool("curl")
        r = ns.in_ns(pid, [curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                           "20", "-x", "http://127.0.0.1:3128", "http://denied.test/"])
        self.assertEqual(r.stdout, "403", r.stderr)
        # The healthcheck's probes (loopback, closed before a byte) are not logged, in every
        # mode (AWF's squid.conf says `!healthcheck_localhost`): wait for the request's line.
        path = os.path.join(self.log, log_name)
        deadline = time.monotonic() + awf.WAIT
        text = ""
        while "denied.test" not in text and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                with open(path) as f:
                    text = f.read()
            except FileNotFoundError:
                pass
        self.assertIn("denied.test", text, "%s lacks the request; proxy stderr:\n%s" % (
            log_name, proc.stderr))
        self.assertNotIn("transaction-end-before-headers", text)
        self.assertEqual(os.stat(path).st_uid, 13)
        # docker stop: SIGTERM to PID 1, SIGKILL after the 2 s stop grace. awf-proxy must be
        # gone before that (it exits at once: AWF's shutdown_lifetime 0).
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        try:
            proc.p.wait(2.0)
        except subprocess.TimeoutExpired:
            self.fail("awf-proxy did not stop within the 2 s stop grace:\n" + proc.stderr)
        self.assertEqual(proc.p.returncode, 0, proc.stderr)
        self.assertLess(time.monotonic() - t0, 2.0)
        proc.stop()  # collects the rest of its stderr
        self.assertNotRegex(proc.stderr, awf.SANITIZER)

    def test_runs_from_arguments(self):
        args = ["--listen", "0.0.0.0:3128", "--allow-domains", awf.ALLOWED,
                "--access-log", "firewall_detailed:/var/log/squid/access.log",
                "--access-log", "audit_jsonl:/var/log/squid/audit.jsonl",
                "--dns-servers", "127.0.0.1:%d" % awf.closed_port(), "--hosts-file", ""]
        proc, pid = self.start({"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF)}, args=args)
        self.wait_healthy(proc, pid)
        self.check_serves_and_stops(proc, pid, "access.log")
        with open(os.path.join(self.log, "audit.jsonl")) as f:
            self.assertIn('"host":"denied.test"', f.read())

    def test_squid_conf(self):
        """The image's default command, AWF's squid.conf delivered as AWF_SQUID_CONFIG_B64,
        IPv6 off."""
        proc, pid = self.start({"AWF_SQUID_CONFIG_B64": b64(SQUID_CONF)}, ipv6=False)
        self.wait_healthy(proc, pid)
        self.check_serves_and_stops(proc, pid, "access.log")

    def netns_with_upstream(self, tls=False):
        """A network namespace of the test's with tests/tools/upstream.py on GATEWAY (on its
        loopback device); returns (name, {"http": port[, "https": port]})."""
        netns = "awfc-%s" % uuid.uuid4().hex[:8]
        subprocess.run(["ip", "netns", "add", netns], check=True)
        self.addCleanup(subprocess.run, ["ip", "netns", "del", netns])
        subprocess.run(["ip", "netns", "exec", netns, "sh", "-c", "ip link set lo up && "
                        "ip addr add %s/32 dev lo" % GATEWAY], check=True)
        cmd = ["ip", "netns", "exec", netns, sys.executable, "-B",
               os.path.join(awf.TOOLS_DIR, "upstream.py"), "--bind", GATEWAY, "--no-echo"]
        if tls:
            cert, key = awf.certs()
            cmd += ["--cert", cert, "--key", key]
        up = awf.Proc(self, "upstream", cmd)
        self.assertTrue(up.wait_line("^ready$", stream="out"), up.stderr)
        return netns, {l.split()[0]: int(l.split()[2]) for l in up.lines_out
                       if len(l.split()) == 3}

    def stop_within_grace(self, pid1, proxy):
        """SIGTERM to the container's PID 1 (su): awf-proxy must be gone within the 2 s grace."""
        t0 = time.monotonic()
        os.kill(pid1, signal.SIGTERM)
        while os.path.exists("/proc/%d/status" % proxy) and \
                ns.status_field(proxy, "State") not in (None, "Z (zombie)"):
            self.assertLess(time.monotonic() - t0, 2.0, "awf-proxy still runs 2 s after SIGTERM")
            time.sleep(0.02)

    def test_awf_compose_command(self):
        """AWF's compose command with the real binary: it allows and denies. There su is PID 1:
        it passes SIGTERM on to its child at once, but then waits 2 s before it exits itself
        (util-linux su; the same under AWF's Squid image). awf-proxy must be gone, its log
        complete, well before.

        The container runs in a network namespace the test made, where the allowed upstream
        listens on 172.17.0.1 (Docker's host gateway, on the namespace's loopback): the
        container's hosts file names it host.docker.internal, as for AWF's --enable-host-access,
        and the squid.conf allows that name and the upstream's port."""
        awf.need_tool("su")
        curl = awf.need_tool("curl")
        netns, ports = self.netns_with_upstream()
        port = ports["http"]
        conf = SQUID_CONF.replace(
            "dstdomain .allowed.test", "dstdomain .allowed.test .host.docker.internal").replace(
            "acl Safe_ports port 443\n", "acl Safe_ports port 443\nacl Safe_ports port %d\n" % port)
        hosts = self.write("hosts", "127.0.0.1 localhost\n%s host.docker.internal\n" % GATEWAY)
        os.chmod(hosts, 0o644)
        os.chown(self.conf, 13, 13)
        proc, pid1 = self.start({"AWF_SQUID_CONFIG_B64": b64(conf)}, ipv6=False,
                                argv=["/bin/bash", "-c", AWF_COMMAND],
                                mounts={"/etc/hosts": hosts}, netns=netns)
        self.wait_healthy(proc, pid1)
        with open("/proc/%d/task/%d/children" % (pid1, pid1)) as f:
            proxy = int(f.read().split()[0])
        self.assertEqual(ns.status_field(proxy, "Uid").split()[0], "13")
        with open("/proc/%d/comm" % proxy) as f:
            self.assertEqual(f.read().strip(), "awf-proxy")

        def get(url):
            r = ns.in_ns(pid1, [curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                "--max-time", "20", "-x", "http://127.0.0.1:3128", url])
            return r.stdout + r.stderr

        self.assertEqual(get("http://host.docker.internal:%d/small" % port), "200")
        self.assertEqual(get("http://denied.test/"), "403")
        self.stop_within_grace(pid1, proxy)
        path = os.path.join(self.log, "access.log")
        with open(path) as f:
            lines = f.read().splitlines()
        # Both decisions logged, in AWF's firewall_detailed format, by uid 13.
        got = [(e["host"], e["status"], e["tag"], e["server"])
               for e in (awf.parse_fd(self, line) for line in lines)]
        self.assertEqual(got, [("host.docker.internal:%d" % port, 200, "TCP_MISS", GATEWAY),
                               ("denied.test", 403, "TCP_DENIED", "-")], lines)
        self.assertEqual(os.stat(path).st_uid, 13)
        proc.p.wait(10)
        proc.stop()
        self.assertNotRegex(proc.stderr, awf.SANITIZER)

    def test_awf_compose_ssl_bump(self):
        """AWF's --ssl-bump run as AWF sets it up (src/ssl-bump.ts, src/squid/ssl-bump.ts, the
        squid service's volumes): the per-run CA's certificate and key bind-mounted read-only at
        their host paths, the certificate database AWF made (13:13) at /var/spool/squid_ssl_db,
        listeners written over several lines, IPv6 off, AWF's compose command. curl trusting only
        the per-run CA gets the allowed path (so the proxy minted the certificate) and a 403 for
        another path of the same host. The origin's certificate is verified against the
        container's trust store (/etc/ssl/certs/ca-certificates.crt, here holding the test
        upstream's certificate, as an operator's bundle would)."""
        awf.need_tool("su")
        curl = awf.need_tool("curl")
        netns, ports = self.netns_with_upstream(tls=True)
        https = ports["https"]
        ssl_dir = os.path.join(self.tmp, "ssl")
        r = subprocess.run([awf.proxy_binary(), "ca", "new", "--days", "1", "--out", ssl_dir],
                           capture_output=True, text=True, timeout=60, env=awf.clean_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        ca, ca_key = os.path.join(ssl_dir, "ca.pem"), os.path.join(ssl_dir, "ca-key.pem")
        os.chown(ca_key, 13, 13)  # readable by proxy only (mode 0600)
        os.chmod(ssl_dir, 0o755)
        ssl_db = os.path.join(self.tmp, "ssl_db")
        os.makedirs(os.path.join(ssl_db, "certs"), mode=0o700)
        for d in (ssl_db, os.path.join(ssl_db, "certs")):
            os.chown(d, 13, 13)
        listener = ("%s ssl-bump \\\n  cert=%s \\\n  key=%s \\\n"
                    "  generate-host-certificates=on \\\n  dynamic_cert_mem_cache_size=16MB \\\n"
                    "  options=NO_SSLv3,NO_TLSv1,NO_TLSv1_1\n")
        conf = ("http_port " + listener % ("3128", ca, ca_key) +
                "http_port " + listener % ("[::]:3128", ca, ca_key) +
                BUMP_CONF % {"port": https, "url": "https://allowed\\.test:%d/small" % https})
        hosts = self.write("hosts", "127.0.0.1 localhost\n%s allowed.test\n" % GATEWAY)
        os.chmod(hosts, 0o644)
        with open(awf.certs()[0]) as f:
            bundle = self.write("bundle.crt", f.read())
        os.chmod(bundle, 0o644)
        os.chown(self.conf, 13, 13)
        proc, pid1 = self.start(
            {"AWF_SQUID_CONFIG_B64": b64(conf)}, ipv6=False, argv=["/bin/bash", "-c", AWF_COMMAND],
            mounts={"/etc/hosts": hosts, ca: (ca, "ro"), ca_key: (ca_key, "ro"),
                    "/var/spool/squid_ssl_db": ssl_db,
                    "/etc/ssl/certs/ca-certificates.crt": (bundle, "ro")}, netns=netns)
        self.wait_healthy(proc, pid1)
        with open("/proc/%d/task/%d/children" % (pid1, pid1)) as f:
            proxy = int(f.read().split()[0])

        def get(path):
            r = ns.in_ns(pid1, [curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                "--max-time", "20", "--cacert", ca, "-x", "http://127.0.0.1:3128",
                                "https://allowed.test:%d%s" % (https, path)])
            return r.stdout + r.stderr

        self.assertEqual(get("/small"), "200", proc.stderr)
        self.assertEqual(get("/bytes/10"), "403")
        self.stop_within_grace(pid1, proxy)
        path = os.path.join(self.log, "access.log")
        with open(path) as f:
            text = f.read()
        self.assertRegex(text, r" GET 200 TCP_MISS:HIER_DIRECT https://allowed\.test:%d/small "
                         % https)
        self.assertRegex(text, r" GET 403 TCP_DENIED:HIER_NONE https://allowed\.test:%d/bytes/10 "
                         % https)
        self.assertEqual(os.stat(path).st_uid, 13)
        self.assertEqual(os.stat(ssl_db).st_uid, 13)
        proc.p.wait(10)
        proc.stop()
        self.assertNotRegex(proc.stderr, awf.SANITIZER)


# The rest of AWF's --ssl-bump squid.conf after its two listeners (src/squid/ssl-bump.ts and the
# generator's access rules): peek, stare, bump the allowed domains, terminate the rest; the
# allowed URL as a url_regex rule.
BUMP_CONF = """\
sslcrtd_program /usr/lib/squid/security_file_certgen -s /var/spool/squid_ssl_db -M 16MB
sslcrtd_children 5
acl allowed_domains dstdomain .allowed.test
acl Safe_ports port 80
acl Safe_ports port 443
acl Safe_ports port %(port)d
acl CONNECT method CONNECT
acl step1 at_step SslBump1
acl step2 at_step SslBump2
acl step3 at_step SslBump3
ssl_bump peek step1
ssl_bump stare step2
ssl_bump bump allowed_domains
ssl_bump terminate all
acl allowed_url_0 url_regex ^%(url)s$
http_access deny !Safe_ports
http_access allow CONNECT allowed_domains
http_access allow allowed_url_0
http_access deny all
logformat firewall_detailed %%ts.%%03tu %%>a:%%>p %%{Host}>h %%<a:%%<p %%rv %%rm %%>Hs %%Ss:%%Sh %%ru "%%{User-Agent}>h"
access_log /var/log/squid/access.log firewall_detailed
cache_log /var/log/squid/cache.log
"""


if __name__ == "__main__":
    unittest.main(verbosity=2)
