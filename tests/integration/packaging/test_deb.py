"""`cpack -G DEB` on the Release tree of the release_build test (configured with
-DCMAKE_INSTALL_PREFIX=/usr): the package's files, conffiles, maintainer scripts, and Depends
that name the Debian package of every library the binary links (readelf's NEEDED entries,
found with ldconfig and dpkg -S on this Debian 12 machine), plus procps for the unit's
/bin/kill. Leaves the .deb in $AWF_BUILD_DIR/packages/ for DebInFreshRootTest."""

import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import awf  # noqa: E402

BUILD = os.environ.get("AWF_BUILD_DIR", os.path.join(awf.SOURCE_DIR, "build"))
RELEASE = os.path.join(BUILD, "release-check")
OUT = os.path.join(BUILD, "packages")


def run(*argv, **kw):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=600, **kw)


class DebTest(awf.TestCase):
    def test_cpack_makes_a_deb_with_the_right_files_and_depends(self):
        cpack = awf.need_tool("cpack")
        awf.need_tool("dpkg-shlibdeps")
        shutil.rmtree(OUT, ignore_errors=True)
        p = run(cpack, "-G", "DEB", "-B", OUT, "--config",
                os.path.join(RELEASE, "CPackConfig.cmake"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        (deb,) = glob.glob(os.path.join(OUT, "awf-proxy_*.deb"))
        version = self.cli("--version").stdout.split()[1]
        self.assertEqual(os.path.basename(deb), "awf-proxy_%s_amd64.deb" % version)

        def field(name):
            return run("dpkg-deb", "-f", deb, name).stdout.strip()

        self.assertEqual(field("Package"), "awf-proxy")
        self.assertEqual(field("Version"), version)
        depends = {d.split()[0] for d in field("Depends").split(", ")}

        x = os.path.join(self.tmp, "x")
        self.assertEqual(run("dpkg-deb", "-x", deb, x).returncode, 0)
        binary = os.path.join(x, "usr/bin/awf-proxy")
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                            run("readelf", "-d", binary).stdout)
        self.assertIn("libuv.so.1", needed)
        cache = run("ldconfig", "-p").stdout
        want = {"procps"}
        for lib in needed:
            m = re.search(r"^\s+%s \(libc6,x86-64\) => (\S+)$" % re.escape(lib), cache, re.M)
            self.assertIsNotNone(m, lib)
            owner = run("dpkg", "-S", os.path.realpath(m.group(1))).stdout
            if not owner:   # merged /usr: dpkg knows the /lib spelling
                owner = run("dpkg", "-S", m.group(1)).stdout
            want.add(owner.split(":")[0])
        self.assertEqual(sorted(want - depends), [], "Depends: %s" % field("Depends"))
        self.assertNotIn("libasan8", depends)   # a Release build, not the sanitized one

        files = sorted(l.split()[-1] for l in run("dpkg-deb", "-c", deb).stdout.splitlines()
                       if not l.startswith("d"))
        self.assertEqual(files, [
            "./etc/awf-proxy/policy.yml", "./etc/logrotate.d/awf-proxy", "./usr/bin/awf-proxy",
            "./usr/lib/systemd/system/awf-proxy.service",
            "./usr/share/bash-completion/completions/awf-proxy",
            "./usr/share/doc/awf-proxy/README.md", "./usr/share/doc/awf-proxy/examples/policy.yml",
            "./usr/share/man/man1/awf-proxy.1.gz"])
        with open(os.path.join(x, "usr/lib/systemd/system/awf-proxy.service")) as f:
            self.assertIn("\nExecStart=/usr/bin/awf-proxy run --policy /etc/awf-proxy/policy.yml",
                          f.read())
        ctl = os.path.join(self.tmp, "ctl")
        self.assertEqual(run("dpkg-deb", "-e", deb, ctl).returncode, 0)
        with open(os.path.join(ctl, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/awf-proxy/policy.yml",
                                                "/etc/logrotate.d/awf-proxy"])
        for script in ("postinst", "prerm", "postrm"):
            self.assertEqual(os.stat(os.path.join(ctl, script)).st_mode & 0o777, 0o755, script)

    def test_cpack_refuses_a_usr_local_tree(self):
        cmake = awf.need_tool("cmake")
        build = os.path.join(self.tmp, "b")
        p = run(cmake, "-S", awf.SOURCE_DIR, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                "-DAWF_TESTS=OFF", env=dict(os.environ, CI=""))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = run("cpack", "-G", "DEB", "-B", os.path.join(self.tmp, "out"), "--config",
                os.path.join(build, "CPackConfig.cmake"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("configure it with -DCMAKE_INSTALL_PREFIX=/usr",
                      " ".join((p.stdout + p.stderr).split()))   # CMake wraps its messages


if __name__ == "__main__":
    import unittest

    unittest.main()
