"""What `cmake --install` puts on a standalone host (packaging/, issue #14), checked on the
build under test without root: the man page describes every long flag any --help prints and
the exit-code table; the installed tree is complete, its unit's ExecStart names the installed
binary and flags the proxy accepts, its config files survive a second install; the logrotate
snippet, run as written with only its paths moved into the test's directory, rotates the
service's logs and makes the running proxy reopen them (SIGUSR1 through the pid file)."""

import gzip
import os
import re
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import awf  # noqa: E402
from awf import ALLOWED  # noqa: E402

BUILD = os.environ.get("AWF_BUILD_DIR", os.path.join(awf.SOURCE_DIR, "build"))
PKG = os.path.join(awf.SOURCE_DIR, "packaging")
# Every help text: the top-level one and each subcommand's.
HELPS = [["--help"], ["run", "--help"], ["check", "--help"], ["explain", "--help"],
         ["netfilter", "--help"], ["squid-conf", "--help"], ["ca", "--help"],
         ["ca", "new", "--help"]]
LONG_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# An option line of a help text: indented, starting with a flag ("  -p, --policy FILE  ...").
OPTION_LINE = re.compile(r"^\s+(-\w, )?--[a-z]", re.M)


def cache_value(name):
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        m = re.search(r"^%s:\w+=(.*)$" % re.escape(name), f.read(), re.M)
    return m.group(1) if m else None


def man_text():
    """The configured man page as roff, with roff's \\- turned back into plain dashes."""
    with open(os.path.join(BUILD, "packaging", "awf-proxy.1")) as f:
        return f.read()


def unit_value(text, key):
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


class ManPageTest(awf.TestCase):
    def test_every_long_flag_of_every_help_is_in_the_man_page(self):
        roff = man_text().replace("\\-", "-")
        flags = set()
        for args in HELPS:
            p = self.cli(*args)
            self.assertEqual(p.returncode, 0, (args, p.stderr))
            for line in p.stdout.splitlines():
                if OPTION_LINE.match(line):
                    flags.update(LONG_FLAG.findall(line))
        self.assertGreater(len(flags), 50, flags)   # the parse found the help texts' flags
        missing = sorted(f for f in flags if not re.search(re.escape(f) + r"(?![\w-])", roff))
        self.assertEqual(missing, [], "flags --help prints that packaging/awf-proxy.1.in lacks")

    def test_exit_codes_and_commands_of_the_help_are_in_the_man_page(self):
        roff = man_text()
        help_text = self.cli("--help").stdout
        codes = re.findall(r"^  (\d)  ", help_text.split("Exit codes:", 1)[1], re.M)
        self.assertEqual(codes, ["0", "1", "2"])
        status = roff.split(".SH EXIT STATUS", 1)[1].split(".SH ", 1)[0]
        self.assertEqual(re.findall(r"^\.B (\d)$", status, re.M), codes)
        commands = roff.split(".SH COMMANDS", 1)[1].split(".SH ", 1)[0]
        for cmd in re.findall(r"^       awf-proxy ([a-z][a-z-]+)", help_text, re.M) + ["check"]:
            self.assertRegex(commands, r"\n\.B %s\b" % re.escape(cmd), cmd)

    def test_groff_renders_it_without_a_warning(self):
        groff = awf.need_tool("groff")
        p = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z",
                            os.path.join(BUILD, "packaging", "awf-proxy.1")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        self.assertIn("awf-proxy %s" % self.cli("--version").stdout.split()[1], man_text())


class InstallTest(awf.TestCase):
    def install(self, root):
        cmake = awf.need_tool("cmake")
        return subprocess.run([cmake, "--install", BUILD], env=dict(os.environ, DESTDIR=root),
                              capture_output=True, text=True, timeout=120)

    def test_cmake_install_puts_every_file_in_place(self):
        root = os.path.join(self.tmp, "root")
        p = self.install(root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        prefix = cache_value("CMAKE_INSTALL_PREFIX")
        # /etc for the /usr and /usr/local prefixes (packaging/CMakeLists.txt).
        etc = "/etc" if prefix in ("/usr", "/usr/local") else prefix + "/etc"

        def at(path):
            return os.path.join(root, path.lstrip("/"))

        binary = at(prefix + "/bin/awf-proxy")
        want = [binary, at(prefix + "/share/man/man1/awf-proxy.1.gz"),
                at(prefix + "/lib/systemd/system/awf-proxy.service"),
                at(etc + "/awf-proxy/policy.yml"), at(etc + "/logrotate.d/awf-proxy"),
                at(prefix + "/share/doc/awf-proxy/examples/policy.yml"),
                at(prefix + "/share/doc/awf-proxy/README.md"),
                at(prefix + "/share/bash-completion/completions/awf-proxy")]
        self.assertEqual([w for w in want if not os.path.isfile(w)], [])
        self.assertTrue(os.access(binary, os.X_OK))
        with gzip.open(at(prefix + "/share/man/man1/awf-proxy.1.gz"), "rt") as f:
            self.assertEqual(f.read(), man_text())
        for conf in (at(etc + "/awf-proxy/policy.yml"), at(etc + "/logrotate.d/awf-proxy")):
            self.assertEqual(os.stat(conf).st_mode & 0o777, 0o644, conf)

        # The unit runs the installed binary on the installed policy, with flags it accepts:
        # the same command line as `check` passes.
        with open(at(prefix + "/lib/systemd/system/awf-proxy.service")) as f:
            unit = f.read()
        (start,) = unit_value(unit, "ExecStart")
        argv = shlex.split(start)
        self.assertEqual(argv[:2], [prefix + "/bin/awf-proxy", "run"])
        self.assertIn(etc + "/awf-proxy/policy.yml", argv)
        argv = [binary, "check"] + [at(a) if a.startswith(etc + "/") else a for a in argv[2:]]
        p = subprocess.run(argv, capture_output=True, text=True, env=awf.clean_env(),
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('"github.com"', p.stdout)
        for key, value in (("ExecReload", "/bin/kill -HUP $MAINPID"), ("DynamicUser", "yes"),
                           ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
                           ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
                           ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                           ("ProtectHome", "yes"), ("PrivateTmp", "yes"), ("Type", "exec")):
            self.assertEqual(unit_value(unit, key), [value], key)

        # A second install keeps what the admin edited.
        with open(at(etc + "/awf-proxy/policy.yml"), "a") as f:
            f.write("# edited\n")
        p = self.install(root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("Kept (not overwritten): %s" % at(etc + "/awf-proxy/policy.yml"), p.stdout)
        with open(at(etc + "/awf-proxy/policy.yml")) as f:
            self.assertTrue(f.read().endswith("# edited\n"))


class LogrotateSnippetTest(awf.TestCase):
    def test_snippet_rotates_the_service_logs_and_the_proxy_reopens(self):
        logrotate = awf.need_tool("logrotate")
        logdir, rundir = os.path.join(self.tmp, "log"), os.path.join(self.tmp, "run")
        os.mkdir(logdir)
        os.mkdir(rundir)
        with open(os.path.join(PKG, "awf-proxy.logrotate")) as f:
            conf = f.read()
        self.assertIn("/run/awf-proxy/awf-proxy.pid", conf)
        # Only the paths move; systemd is taken as absent (the pid-file branch runs).
        conf = conf.replace("/var/log/awf-proxy/", logdir + "/")
        conf = conf.replace("/run/awf-proxy/", rundir + "/")
        conf = conf.replace("/run/systemd/system", os.path.join(self.tmp, "no-systemd"))
        conf_path = self.write("logrotate.conf", conf)
        access, audit = os.path.join(logdir, "access.log"), os.path.join(logdir, "audit.jsonl")
        pid_file = os.path.join(rundir, "awf-proxy.pid")
        px = self.proxy("--pid-file", pid_file, "--access-log", access,
                        "--access-log", "audit_jsonl:" + audit, logs=())

        lines, wait_lines = awf.file_lines, awf.wait_file_lines
        denied = "http://denied.example/"   # denied by the policy: nothing leaves
        self.assertDenied(self.curl(denied, proxy=px))
        self.assertEqual(len(wait_lines(access, 1)), 1)
        self.assertEqual(len(wait_lines(audit, 1)), 1)
        state = os.path.join(self.tmp, "logrotate.state")
        p = subprocess.run([logrotate, "-f", "-s", state, conf_path], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(len(lines(access + ".1")), 1)   # delaycompress: .1 stays plain
        self.assertEqual(len(lines(audit + ".1")), 1)
        self.assertDenied(self.curl(denied, proxy=px))
        self.assertEqual(len(wait_lines(access, 1)), 1, px.stderr)
        self.assertEqual(len(wait_lines(audit, 1)), 1, px.stderr)
        self.assertEqual(len(lines(access + ".1")), 1)
        self.assertEqual(px.stop(), 0)


if __name__ == "__main__":
    import unittest

    unittest.main()
