"""`awf-proxy check`: validation of policies from files and flags (SPEC §3), positions in error
messages, the normalized output, --help and --version."""

import json
import os
import re
import subprocess
import unittest

import awf

# Every invalid form of SPEC §3 that can be written in an entry, with a label for messages.
INVALID_ENTRIES = [
    ("double quote", 'git"hub.com'),
    ("single quote", "git'hub.com"),
    ("backtick", "git`hub.com"),
    ("semicolon", "github.com;rm"),
    ("backslash", "git\\hub.com"),
    ("double dot", "github..com"),
    ("lone dot", "."),
    ("lone star", "*"),
    ("star dot star", "*.*"),
    ("two star labels", "*.*.com"),
    ("only stars and dots", "*.*.*"),
    ("port", "github.com:8080"),
    ("path", "github.com/path"),
    ("scheme with path", "https://github.com/a/b"),
]
# Forms that cannot appear inside a list file or flag (they separate or comment entries there),
# so they are checked in YAML only.
YAML_ONLY_INVALID = [
    ("empty", ""),
    ("blank", "   "),
    ("space inside", "git hub.com"),
    ("tab inside", "git\thub.com"),
    ("newline inside", "git\nhub.com"),
    ("carriage return inside", "git\rhub.com"),
    ("hash", "github.com#x"),
]
BAD_PORTS = ["0", "65536", "10-5", "08", " 80", "80 ", "-1", "http", "1-", "99999-100000"]


class CheckTest(awf.TestCase):
    def check(self, *args):
        return self.cli("check", *args)

    def assertInvalid(self, p, where, label=""):
        """Exit 2 and one stderr line "awf-proxy: WHERE: reason"."""
        self.assertEqual(p.returncode, 2, "%s: %s%s" % (label, p.stdout, p.stderr))
        self.assertRegex(p.stderr, re.compile(r"^awf-proxy: " + re.escape(where) + r": \S.*$",
                                              re.M), label)

    # ---- valid input

    def test_default_policy(self):
        p = self.check()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("github.com", p.stdout)
        self.assertIn("127.0.0.1:3128", p.stdout)
        self.assertNotIn("example.com", p.stdout)

    def test_flags_printed(self):
        p = self.check("--allow-domains", "GitHub.COM., http://Plain.Example/ ,*.API.test",
                       "--block-domains", "Gist.GitHub.com", "--allow-ports", "8080,9000-9100")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.lower()  # entries may be shown as written or lower-cased
        for name in ("github.com", "plain.example", "*.api.test", "gist.github.com"):
            self.assertIn(name, out)
        self.assertRegex(out, r"8080")
        self.assertRegex(out, r"9000-9100")
        self.assertRegex(out, r"(?m)^allow:")
        self.assertRegex(out, r"(?m)^block:")

    def test_output_round_trips(self):
        text, _ = awf.policy_yaml(allow=["GitHub.com", "https://api.example.com", "*.cdn.test"],
                                  block=["bad.github.com"])
        path = self.write("policy.yaml", text)
        first = self.check("-p", path)
        self.assertEqual(first.returncode, 0, first.stderr)
        again_path = self.write("normalized.yaml", first.stdout)
        second = self.check("--policy", again_path)
        self.assertEqual(second.returncode, 0, second.stderr + "\n" + first.stdout)
        # Same policy; comments (which name where each entry came from) may differ.
        strip = lambda t: re.sub(r"\s*#.*", "", t)  # noqa: E731
        self.assertEqual(strip(second.stdout), strip(first.stdout))

    def test_list_file_comments_and_commas(self):
        path = self.write("allow.txt", "# AWF-style list\n\ngithub.com, api.example.com\n"
                          "  npmjs.org   # trailing comment\n*.cdn.test,\n")
        p = self.check("--allow-domains-file", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        for name in ("github.com", "api.example.com", "npmjs.org", "*.cdn.test"):
            self.assertIn(name, p.stdout)
        self.assertNotIn("trailing", p.stdout)
        self.assertNotIn("AWF-style", p.stdout)

    def test_block_list_file(self):
        path = self.write("block.txt", "# blocked\ngist.github.com\n")
        p = self.check("--allow-domains", "github.com", "--block-domains-file", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("gist.github.com", p.stdout)

    def test_good_ports(self):
        for ports in ("1", "65535", "8080", "9000-9100", "5-5", "8080,9000-9100"):
            p = self.check("--allow-domains", "github.com", "--allow-ports", ports)
            self.assertEqual(p.returncode, 0, "%r: %s" % (ports, p.stderr))

    # ---- invalid entries, with their positions

    def test_invalid_entries_in_list_file(self):
        for label, entry in INVALID_ENTRIES:
            with self.subTest(label):
                # Line 3, after a comment and a valid entry; col 3 after two spaces.
                path = self.write("list.txt", "# list\ngithub.com\n  %s\n" % entry)
                self.assertInvalid(self.check("--allow-domains-file", path), path + ":3:3", label)

    def test_invalid_entry_after_comma_has_its_column(self):
        path = self.write("list.txt", "github.com, git..hub.com\n")
        self.assertInvalid(self.check("--allow-domains-file", path), path + ":1:13")

    def test_invalid_entries_in_block_list_file(self):
        for label, entry in INVALID_ENTRIES[:6]:
            with self.subTest(label):
                path = self.write("block.txt", "%s\n" % entry)
                p = self.check("--allow-domains", "github.com", "--block-domains-file", path)
                self.assertInvalid(p, path + ":1:1", label)

    def test_invalid_entries_in_yaml(self):
        for label, entry in INVALID_ENTRIES + YAML_ONLY_INVALID:
            with self.subTest(label):
                text, where = awf.policy_yaml(allow=["github.com", entry])
                path = self.write("policy.yaml", text)
                line, col = where[entry]
                p = self.check("-p", path)
                self.assertEqual(p.returncode, 2, "%s: %s" % (label, p.stderr))
                # The column may name the opening quote or the first character inside it.
                self.assertRegex(p.stderr, re.compile(
                    r"^awf-proxy: %s:%d:(%d|%d): \S" % (re.escape(path), line, col, col + 1),
                    re.M), label)

    def test_invalid_block_entry_in_yaml(self):
        text, where = awf.policy_yaml(allow=["github.com"], block=["*.*.com"])
        path = self.write("policy.yaml", text)
        line, col = where["*.*.com"]
        p = self.check("-p", path)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, r"^awf-proxy: %s:%d:(%d|%d): \S" % (
            re.escape(path), line, col, col + 1))

    def test_invalid_entries_in_flags(self):
        for flag in ("--allow-domains", "--block-domains"):
            for label, entry in INVALID_ENTRIES:
                with self.subTest(flag=flag, form=label):
                    args = [flag, "github.com," + entry]
                    if flag == "--block-domains":
                        args = ["--allow-domains", "github.com"] + args
                    self.assertInvalid(self.check(*args), flag, label)

    def test_bad_ports_in_flags(self):
        for ports in BAD_PORTS:
            with self.subTest(ports=ports):
                p = self.check("--allow-domains", "github.com", "--allow-ports", ports)
                self.assertInvalid(p, "--allow-ports", repr(ports))

    def test_bad_ports_in_yaml(self):
        for ports in BAD_PORTS[:5]:
            with self.subTest(ports=ports):
                text, _ = awf.policy_yaml(allow=["github.com"],
                                          extra="ports:\n  - %s\n" % awf.json.dumps(ports))
                path = self.write("policy.yaml", text)
                line = text.count("\n") - 0  # the port is on the last line
                p = self.check("-p", path)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertRegex(p.stderr, r"^awf-proxy: %s:%d:\d+: \S" % (re.escape(path), line))

    def test_bad_settings(self):
        cases = [
            (["--read-timeout", "5x"], "--read-timeout"),
            (["--connect-timeout", ""], "--connect-timeout"),
            (["--listen", "127.0.0.1"], "--listen"),
            (["--listen", "300.0.0.1:80"], "--listen"),
            (["--allow-ranges", "10.0.0.0/33"], "--allow-ranges"),
            (["--allow-ranges", "not-an-address"], "--allow-ranges"),
            (["--max-connections", "-1"], "--max-connections"),
            (["--set", "no.such.key=1"], "no.such.key"),
            (["--set", "logs.strip_query=maybe"], "logs.strip_query"),
            (["--access-log", "logformat=%Zz:" + os.path.join(self.tmp, "x.log")], ""),
        ]
        for args, where in cases:
            with self.subTest(args=args):
                p = self.check("--allow-domains", "github.com", *args)
                self.assertEqual(p.returncode, 2, p.stdout[:200] + p.stderr)
                self.assertTrue(p.stderr.startswith("awf-proxy: "), p.stderr)
                self.assertIn(where, p.stderr)

    def test_good_settings(self):
        p = self.check("--allow-domains", "github.com", "--read-timeout", "500ms",
                       "--connect-timeout", "2m", "--lifetime", "8h", "--listen", "[::1]:3128",
                       "--listen", "127.0.0.1:0", "--allow-ranges", "127.0.0.0/8,::1/128",
                       "--max-connections", "100", "--threads", "2",
                       "--set", "logs.strip_query=false",
                       "--access-log", "squid:" + os.path.join(self.tmp, "s.log"))
        self.assertEqual(p.returncode, 0, p.stderr)
        for text in ("500ms", "2m", "8h", "[::1]:3128", "127.0.0.0/8", "strip_query: false"):
            self.assertIn(text, p.stdout)

    def test_missing_file(self):
        missing = os.path.join(self.tmp, "nope.yaml")
        p = self.check("-p", missing)
        self.assertEqual(p.returncode, 2)
        self.assertIn(missing, p.stderr)
        self.assertTrue(p.stderr.startswith("awf-proxy: "), p.stderr)
        p = self.check("--allow-domains-file", missing)
        self.assertEqual(p.returncode, 2)
        self.assertIn(missing, p.stderr)

    def test_first_error_stops_everything(self):
        # An invalid entry is an error even when everything else is fine, and nothing is printed.
        p = self.check("--allow-domains", "github.com,*")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout, "")

    def test_unknown_yaml_key(self):
        text, _ = awf.policy_yaml(allow=["github.com"], extra="no_such_key: 1\n")
        path = self.write("policy.yaml", text)
        p = self.check("-p", path)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, r"^awf-proxy: %s:%d:1: \S" % (re.escape(path),
                                                                  text.count("\n")))

    def test_unknown_option(self):
        p = self.check("--no-such-option")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertTrue(p.stderr.startswith("awf-proxy"), p.stderr)


class PlaceTest(awf.TestCase):
    """Every error names the file:line:col, the flag or the path at fault (issue 14), and an
    input byte is never echoed raw to the terminal."""

    def assertPlaced(self, p, line):
        """Exit 2 and exactly this one stderr line (stdout empty)."""
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertEqual(p.stderr, "awf-proxy: " + line + "\n")

    def test_duplicate_listener(self):
        p = self.cli("check", "--listen", "127.0.0.1:3128", "--listen", "127.0.0.1:3128")
        self.assertPlaced(p, "--listen: 127.0.0.1:3128 given twice")
        path = self.write("dup.yml", 'version: 1\nlisten:\n  - "127.0.0.1:3128"\n'
                          '  - "127.0.0.1:3128"\n')
        self.assertPlaced(self.cli("check", "-p", path),
                          "%s:4:5: listen: 127.0.0.1:3128 given twice" % path)
        conf = self.write("squid.conf", "http_port 127.0.0.1:3128\nhttp_port 127.0.0.1:3128\n"
                          "http_access deny all\n")
        self.assertPlaced(self.cli("check", "--squid-conf", conf),
                          "%s:2: http_port: 127.0.0.1:3128 given twice" % conf)
        # Port 0 (the kernel picks) may be given any number of times.
        p = self.cli("check", "--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_min_ttl_above_max_ttl(self):
        path = self.write("ttl.yml", "version: 1\ndns:\n  min_ttl: 100s\n  max_ttl: 10s\n")
        self.assertPlaced(self.cli("check", "-p", path),
                          "%s:3:12: dns.min_ttl (100s) is above dns.max_ttl (10s, given at "
                          "%s:4:12)" % (path, path))
        self.assertPlaced(self.cli("check", "--set", "dns.min_ttl=5000"),
                          "--set dns.min_ttl: dns.min_ttl (5000s) is above dns.max_ttl (3600s)")
        # Judged once everything is merged: a later flag can make the file's value valid.
        p = self.cli("check", "-p", path, "--set", "dns.max_ttl=200")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_bad_log_format(self):
        log = os.path.join(self.tmp, "x.log")
        self.assertPlaced(self.cli("check", "--access-log", "logformat=%ts %>zz:" + log),
                          '--access-log: log format: character 5: unknown code "%>zz"')
        path = self.write("lf.yml", 'version: 1\nlogs:\n  outputs:\n'
                          '    - {format: "%%ts %%{", path: "%s"}\n' % log)
        self.assertPlaced(self.cli("check", "-p", path),
                          "%s:4:16: log format: character 5: unterminated '{'" % path)
        # run says the same before it opens anything, with its timestamp, and exits 2.
        p = self.cli("run", "-p", path, "--listen", "127.0.0.1:0")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, awf.STAMP + re.escape(
            "awf-proxy: %s:4:16: log format: character 5: unterminated '{'" % path))
        self.assertFalse(os.path.exists(log))

    def test_directory_as_policy_or_list(self):
        d = os.path.join(self.tmp, "adir")
        os.mkdir(d)
        for flag in ("-p", "--squid-conf", "--allow-domains-file", "--block-domains-file"):
            with self.subTest(flag=flag):
                self.assertPlaced(self.cli("check", flag, d), "%s: cannot read: Is a directory" % d)

    def test_hosts_file_directory(self):
        d = os.path.join(self.tmp, "hosts.d")
        os.mkdir(d)
        self.assertPlaced(self.cli("check", "--hosts-file", d),
                          "hosts file %s: Is a directory" % d)

    def test_non_utf8_yaml_at_its_place(self):
        path = self.write("u.yml", b'version: 1\nallow:\n  - "a\xc3\xa9\xffc.com"\n')
        self.assertPlaced(self.cli("check", "-p", path),
                          "%s:3:8: invalid leading UTF-8 octet (byte 0xff)" % path)

    def test_bad_bytes_are_escaped(self):
        # Raw: a terminal would take ESC [ 31 m as a colour change; invalid UTF-8 as garbage.
        path = self.write("list.txt", b"github.com\nb\xff.com\n")
        p = subprocess.run([awf.proxy_binary(), "check", "--allow-domains-file", path],
                           capture_output=True, env=awf.clean_env(), timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr, b'awf-proxy: %s:2:1: invalid entry "b\\xff.com": non-ASCII '
                         b"character (write internationalized names in their xn-- form)\n"
                         % path.encode())
        p = self.cli("check", "--allow-domains", "a\x1b[31mb.com")
        self.assertPlaced(p, '--allow-domains: invalid entry "a\\x1b[31mb.com": invalid '
                          "character \\x1b")
        p = self.cli("check", "--allow-domains", "ab\u00e9.com")
        self.assertPlaced(p, '--allow-domains: invalid entry "ab\\xc3\\xa9.com": non-ASCII '
                          "character (write internationalized names in their xn-- form)")
        for stream in (p.stdout, p.stderr):
            self.assertTrue(all(0x20 <= ord(ch) < 0x7f or ch == "\n" for ch in stream), stream)


class CheckJsonTest(awf.TestCase):
    """check --json: one JSON object on stdout, nothing on stderr, exit 0 or 2 as ever."""

    def check_json(self, *args, rc=0):
        p = self.cli("check", "--json", *args)
        self.assertEqual((p.returncode, p.stderr), (rc, ""), p.stdout)
        d = json.loads(p.stdout)
        self.assertEqual(sorted(d), ["errors", "ok", "policy", "warnings"])
        self.assertEqual(d["ok"], rc == 0)
        return d

    def test_valid_policy_summary(self):
        text, _ = awf.policy_yaml(allow=["github.com", "*.example.com"], block=["bad.example.com"],
                                  extra="ports: [8080, 9000-9100]\n")
        path = self.write("p.yml", text)
        d = self.check_json("-p", path, "--listen", "127.0.0.1:8888")
        self.assertEqual(d["errors"], [])
        pol = d["policy"]
        self.assertEqual((pol["source"], pol["allow"], pol["block"], pol["squid_conf"]),
                         (path, 2, 1, False))
        self.assertEqual(pol["ports"], [80, 443, 8080, "9000-9100"])
        self.assertEqual(pol["listen"], ["127.0.0.1:8888"])
        self.assertRegex(pol["sha256"], "^[0-9a-f]{64}$")
        # The normalized policy is exactly what check prints without --json.
        self.assertEqual(pol["normalized"],
                         self.cli("check", "-p", path, "--listen", "127.0.0.1:8888").stdout)
        self.assertEqual(self.check_json()["policy"]["source"], "<default>")

    def test_errors_with_their_place(self):
        text, where = awf.policy_yaml(allow=["github.com", "*.*.com"])
        path = self.write("bad.yml", text)
        d = self.check_json("-p", path, rc=2)
        self.assertIsNone(d["policy"])
        (e,) = d["errors"]
        line, col = where["*.*.com"]
        self.assertEqual((e["file"], e["line"], e["col"], e["flag"]), (path, line, col, None))
        self.assertTrue(e["message"].startswith('invalid entry "*.*.com"'), e)
        self.assertEqual(e["text"], "%s:%d:%d: %s" % (path, line, col, e["message"]))
        (e,) = self.check_json("--allow-domains", "a.com", "--set", "dns.min_ttl=9999",
                               rc=2)["errors"]
        self.assertEqual((e["file"], e["line"], e["flag"]), (None, None, "--set dns.min_ttl"))
        (e,) = self.check_json("--access-log", "logformat=%zz:-", rc=2)["errors"]
        self.assertEqual(e["flag"], "--access-log")
        self.assertEqual(e["message"], 'log format: character 1: unknown code "%zz"')
        d = os.path.join(self.tmp, "h")
        os.mkdir(d)
        (e,) = self.check_json("--hosts-file", d, rc=2)["errors"]
        self.assertEqual((e["file"], e["message"]), (d, "Is a directory"))
        # A path that is not UTF-8 still makes valid JSON (U+FFFD stands for the byte).
        bad = os.path.join(self.tmp.encode(), b"nope\xff.txt")
        p = subprocess.run([awf.proxy_binary(), "check", "--json", "--allow-domains-file", bad],
                           capture_output=True, env=awf.clean_env(), timeout=30)
        self.assertEqual(p.returncode, 2)
        (e,) = json.loads(p.stdout.decode("utf-8"))["errors"]
        self.assertEqual(e["file"], os.path.join(self.tmp, "nope\ufffd.txt"))

    def test_squid_conf_warnings(self):
        conf = self.write("squid.conf", "cache_mem 64 MB\nacl ok dstdomain .a.test\n"
                          "http_access allow ok\nhttp_access deny all\n")
        d = self.check_json("--squid-conf", conf)
        self.assertTrue(d["policy"]["squid_conf"])
        self.assertGreaterEqual(len(d["warnings"]), 1, d)
        w = d["warnings"][0]
        self.assertEqual((w["file"], w["line"], w["col"]), (conf, 1, None))
        self.assertIn("cache_mem", w["message"])


class DefaultRuleTest(awf.TestCase):
    def test_help_states_the_one_rule_and_it_holds(self):
        # --help used to say any --allow/--block flag drops the default; only domain entries do.
        h = self.cli("check", "--help").stdout
        self.assertNotIn("any --allow/--block flag", h)
        self.assertIn("--set allow=/block=", h)
        for args, default in ((["--allow-ports", "8080"], True),
                              (["--allow-ranges", "10.0.0.0/8"], True),
                              (["--allow-domains", "a.test"], False),
                              (["--set", "allow=a.test"], False)):
            with self.subTest(args=args):
                p = self.cli("check", *args)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual("<default>" in p.stdout, default, p.stdout)


class HelpVersionTest(awf.TestCase):
    def test_help(self):
        p = self.cli("--help")
        self.assertEqual(p.returncode, 0)
        for word in ("check", "explain", "--allow-domains", "--allow-domains-file",
                     "--block-domains", "--allow-ports", "--access-log", "--listen"):
            self.assertIn(word, p.stdout)
        self.assertEqual(p.stderr, "")

    def test_version(self):
        with open(os.path.join(awf.SOURCE_DIR, "CMakeLists.txt")) as f:
            version = re.search(r"project\(awf-proxy VERSION (\S+)", f.read()).group(1)
        p = self.cli("--version")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout.strip(), "awf-proxy " + version)

    def test_unknown_command(self):
        p = self.cli("frobnicate")
        self.assertEqual(p.returncode, 2)
        self.assertIn("frobnicate", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
