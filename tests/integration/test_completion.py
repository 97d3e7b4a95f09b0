"""Bash completion (packaging/bash-completion/awf-proxy): every subcommand and every long flag
that `awf-proxy --help` and each subcommand's --help print is offered, so the script cannot
drift from the binary; flags that take files, directories or fixed words complete those; every
--set key it offers is one the policy knows."""

import os
import re
import subprocess
import unittest

import awf

SCRIPT = os.path.join(awf.SOURCE_DIR, "packaging", "bash-completion", "awf-proxy")
SUBCOMMANDS = ["run", "check", "explain", "netfilter", "squid-conf", "ca"]
# An option line ("  -p, --policy FILE", "  --side agent|host") or a usage line.
OPTION_LINE = re.compile(r"^\s*(?:-\w, )?--[a-z0-9]|^\s*(?:Usage:|awf-proxy )")
FLAG = re.compile(r"--[a-z0-9][a-z0-9-]*")


class CompletionTest(awf.TestCase):
    def setUp(self):
        super().setUp()
        self.bash = awf.need_tool("bash")

    def complete(self, *words):
        """COMPREPLY for the command line `awf-proxy WORDS...`, the cursor on the last word."""
        words = ["awf-proxy"] + list(words)
        script = ("source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_awf_proxy\n"
                  "printf '%%s\\n' \"${COMPREPLY[@]}\"\n" % (
                      SCRIPT, " ".join("'%s'" % w for w in words), len(words) - 1))
        p = subprocess.run([self.bash, "--norc", "--noprofile", "-c", script],
                           capture_output=True, text=True, cwd=self.tmp, timeout=30)
        self.assertEqual((p.returncode, p.stderr), (0, ""), script)
        return set(l for l in p.stdout.split("\n") if l)

    def help_flags(self, *cmd):
        p = self.cli(*cmd, "--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        flags = set()
        for line in p.stdout.split("\n"):
            if OPTION_LINE.match(line):
                flags.update(FLAG.findall(line))
        self.assertTrue(flags, p.stdout)
        return flags

    def test_every_subcommand(self):
        p = self.cli("--help")
        named = set(re.findall(r"^(?:Usage: |[ \t]+)awf-proxy \[?([a-z][a-z-]*)\]?", p.stdout,
                               re.M))
        self.assertEqual(named, set(SUBCOMMANDS))
        self.assertEqual(self.complete(""), set(SUBCOMMANDS))
        self.assertEqual(self.complete("ex"), {"explain"})

    def test_every_flag_of_every_help(self):
        # awf-proxy --help: a usage line's flags belong to its subcommand ("awf-proxy ca new
        # --out DIR"); the option lines and "awf-proxy --help | --version" to the top level.
        p = self.cli("--help")
        for line in p.stdout.split("\n"):
            m = re.match(r"^(?:Usage: |\s+)awf-proxy \[?([a-z][a-z-]*)\]?", line)
            if m and m.group(1) != "run":
                words = (m.group(1), "--")
            elif OPTION_LINE.match(line):
                words = ("--",)
            else:
                continue
            missing = set(FLAG.findall(line)) - self.complete(*words)
            self.assertEqual(missing, set(), "awf-proxy --help: " + line)
        for cmd in SUBCOMMANDS:
            with self.subTest(cmd=cmd):
                missing = self.help_flags(cmd) - self.complete(cmd, "--")
                self.assertEqual(missing, set(), "awf-proxy %s --help" % cmd)
        # Flags of one subcommand are not offered for another.
        self.assertNotIn("--json", self.complete("run", "--"))
        self.assertNotIn("--side", self.complete("check", "--"))
        self.assertNotIn("--version", self.complete("check", "--"))

    def test_actions_and_values(self):
        self.assertEqual(self.complete("netfilter", ""), {"print", "apply", "remove"})
        self.assertEqual(self.complete("ca", ""), {"new"})
        self.assertEqual(self.complete("netfilter", "apply", "--side", ""), {"agent", "host"})
        self.assertEqual(self.complete("netfilter", "apply", "--ipv6", "o"), {"on", "off"})
        self.write("my-policy.yml", "version: 1\n")
        os.mkdir(os.path.join(self.tmp, "my-dir"))
        self.assertEqual(self.complete("check", "-p", "my-p"), {"my-policy.yml"})
        self.assertEqual(self.complete("--hosts-file", "my-p"), {"my-policy.yml"})
        self.assertEqual(self.complete("ca", "new", "--out", "my-"), {"my-dir"})
        self.assertEqual(self.complete("--allow-domains", ""), set())  # the user's own value
        self.assertIn("dns.hosts_file=", self.complete("run", "--set", "dns."))

    def test_set_keys_are_policy_keys(self):
        with open(SCRIPT) as f:
            text = f.read()
        keys = re.search(r'_awf_proxy_set_keys="([^"]*)"', text).group(1).split()
        self.assertGreater(len(keys), 40)
        for key in keys:
            with self.subTest(key=key):
                p = self.cli("check", "--set", key + "\x01")
                self.assertNotIn("unknown", p.stderr.lower(), p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
