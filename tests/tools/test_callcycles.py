"""callcycles.py on objects compiled here: a cycle between two files is found and named, a
chain is not, --allow leaves an edge out, static functions do not count, and archives are read
per member."""
import os
import subprocess
import sys
import tempfile
import unittest

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callcycles.py")


class CallCyclesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def obj(self, name, text):
        src = os.path.join(self.tmp.name, name + ".c")
        with open(src, "w") as f:
            f.write(text)
        o = os.path.join(self.tmp.name, name + ".c.o")
        subprocess.run(["cc", "-c", "-o", o, src], check=True)
        return o

    def run_tool(self, *args):
        return subprocess.run([sys.executable, TOOL, "--dir", "m", *args],
                              capture_output=True, text=True)

    def test_cycle_found_with_its_symbols(self):
        a = self.obj("a", "int b_f(void);\nint a_f(void) { return b_f(); }\n")
        b = self.obj("b", "int a_f(void);\nint b_f(void) { return a_f(); }\n")
        r = self.run_tool(a, b)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("m/a.c (b_f) -> m/b.c (a_f) -> m/a.c", r.stderr)

    def test_chain_is_no_cycle(self):
        a = self.obj("a", "int b_f(void);\nint a_f(void) { return b_f(); }\n")
        b = self.obj("b", "int c_f(void);\nint b_f(void) { return c_f(); }\n")
        c = self.obj("c", "int c_f(void) { return 1; }\n")
        r = self.run_tool(a, b, c)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_allow_and_statics(self):
        a = self.obj("a", "int b_f(void);\nint a_f(void) { return b_f(); }\n")
        b = self.obj("b", "int a_f(void);\nint b_f(void) { return a_f(); }\n")
        self.assertEqual(self.run_tool("--allow", "b.c:a.c", a, b).returncode, 0)
        # the same names as statics in each file: nothing crosses
        s = self.obj("s", "static int b_f(void) { return 0; }\nint s_f(void) { return b_f(); }\n")
        self.assertEqual(self.run_tool(a, s).returncode, 0)

    def test_outside(self):
        a = self.obj("a", "int b_f(void);\nint a_f(void) { return b_f(); }\n")
        b = self.obj("b", "int a_f(void);\nint b_f(void) { return a_f(); }\n")
        c = self.obj("c", "int a_f(void);\nint c_f(void) { return a_f(); }\n")
        # c calls into the cycle but is not part of it: checked and clean, the cycle a note
        r = self.run_tool("--outside", "c.c", a, b, c)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("note: a cycle among m/a.c, m/b.c", r.stdout)
        r = self.run_tool("--outside", "c.c", "--outside", "b.c", a, b, c)
        self.assertEqual(r.returncode, 1)
        self.assertIn("m/a.c (b_f) -> m/b.c (a_f) -> m/a.c", r.stderr)
        self.assertEqual(self.run_tool("--outside", "z.c", a, b, c).returncode, 2)

    def test_archive_members(self):
        a = self.obj("a", "int b_f(void);\nint a_f(void) { return b_f(); }\n")
        b = self.obj("b", "int a_f(void);\nint b_f(void) { return a_f(); }\n")
        lib = os.path.join(self.tmp.name, "libm.a")
        subprocess.run(["ar", "rcs", lib, a, b], check=True)
        r = self.run_tool(lib)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("m/a.c", r.stderr)

    def test_missing_file(self):
        self.assertEqual(self.run_tool(os.path.join(self.tmp.name, "none.o")).returncode, 2)


if __name__ == "__main__":
    unittest.main()
