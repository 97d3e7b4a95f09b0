"""names.py on a module compiled here (m/ with m.h public, m-int.h internal, a user outside):
each way of breaking the naming rule is found and named, a module that keeps it passes, tests
count as users of internal names only, and archives are read per member."""
import os
import subprocess
import sys
import tempfile
import unittest

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "names.py")


class NamesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.root = self.tmp.name
        for d in ("m", "other", "tests"):
            os.mkdir(os.path.join(self.root, d))
        self.write("m/m.h", "int awf_m_open(void);\n")
        self.write("m/m-int.h", "int m_shared(void);\n")
        self.write("other/user.c", "int awf_m_open(void);\nint use(void) { return awf_m_open(); }\n")

    def write(self, rel, text):
        with open(os.path.join(self.root, rel), "w") as f:
            f.write(text)

    def obj(self, name, text):
        src = os.path.join(self.root, "m", name + ".c")
        with open(src, "w") as f:
            f.write(text)
        o = os.path.join(self.root, name + ".c.o")
        subprocess.run(["cc", "-c", "-o", o, src], check=True)
        return o

    def run_tool(self, *objs, extra=()):
        d = os.path.join(self.root, "m")
        return subprocess.run([sys.executable, TOOL, "--module", "m", "--dir", d,
                               "--used-in", os.path.join(self.root, "other"),
                               "--tests-in", os.path.join(self.root, "tests"), *extra, *objs],
                              capture_output=True, text=True)

    def good(self):
        a = self.obj("a", "int m_shared(void);\nstatic int helper(void) { return 1; }\n"
                          "int awf_m_open(void) { return m_shared() + helper(); }\n")
        b = self.obj("b", "int m_shared(void) { return 2; }\n")
        return a, b

    def test_module_by_the_rule(self):
        r = self.run_tool(*self.good())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 exported names in 2 files of m/", r.stdout)

    def test_api_name_not_in_public_header(self):
        a, b = self.good()
        c = self.obj("c", "int awf_m_close(void) { return 0; }\n")
        r = self.run_tool(a, b, c)
        self.assertEqual(r.returncode, 1)
        self.assertIn("m/c.c: awf_m_close: an API name", r.stderr)

    def test_api_name_nobody_outside_uses(self):
        self.write("m/m.h", "int awf_m_open(void);\nint awf_m_inner(void);\n")
        self.write("tests/t.c", "int x(void) { return awf_m_inner(); }\n")
        a, b = self.good()
        c = self.obj("c", "int awf_m_inner(void) { return 0; }\n")
        r = self.run_tool(a, b, c)
        self.assertEqual(r.returncode, 1)
        self.assertIn("m/c.c: awf_m_inner: API, but no code outside m/ uses it", r.stderr)
        # --allow exempts it
        self.assertEqual(self.run_tool(a, b, c, extra=("--allow", "awf_m_inner")).returncode, 0)

    def test_internal_name_in_public_header_or_undeclared(self):
        self.write("m/m.h", "int awf_m_open(void);\nint m_shared(void);\n")
        r = self.run_tool(*self.good())
        self.assertEqual(r.returncode, 1)
        self.assertIn("m/b.c: m_shared: an internal name in a public header", r.stderr)
        self.write("m/m.h", "int awf_m_open(void);\n")
        self.write("m/m-int.h", "\n")
        r = self.run_tool(*self.good())
        self.assertIn("m/b.c: m_shared: an internal name that no internal header declares",
                      r.stderr)

    def test_internal_name_of_one_file_is_static(self):
        self.write("m/m-int.h", "int m_shared(void);\nint m_alone(void);\n")
        a, b = self.good()
        c = self.obj("c", "int m_alone(void) { return 0; }\n")
        r = self.run_tool(a, b, c)
        self.assertEqual(r.returncode, 1)
        self.assertIn("m/c.c: m_alone: used by no other file of m/ nor by a test: make it static",
                      r.stderr)
        # a test that calls it keeps it out of static
        self.write("tests/t.c", "int m_alone(void);\nint x(void) { return m_alone(); }\n")
        self.assertEqual(self.run_tool(a, b, c).returncode, 0)

    def test_other_prefix(self):
        a, b = self.good()
        c = self.obj("c", "int stray(void) { return 0; }\n")
        r = self.run_tool(a, b, c)
        self.assertEqual(r.returncode, 1)
        self.assertIn("m/c.c: stray: neither awf_m_* nor m_*", r.stderr)

    def test_archive_and_list_argument(self):
        a, b = self.good()
        lib = os.path.join(self.root, "libm.a")
        subprocess.run(["ar", "rcs", lib, a, b], check=True)
        self.assertEqual(self.run_tool(lib).returncode, 0)
        self.assertEqual(self.run_tool(f"{a};{b}").returncode, 0)
        self.assertEqual(self.run_tool(os.path.join(self.root, "none.o")).returncode, 2)


if __name__ == "__main__":
    unittest.main()
