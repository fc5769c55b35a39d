"""The power-cut shim checked on its own: a small program writes, syncs, creates, renames
and links under power_loss.so; after `undo_unsynced` the directory must be exactly as a
disk that kept only the synced changes would leave it. Exits 1 naming what differs.
Standard library only; run by .ci/run before the crash test that relies on the shim.

usage: Tests/reliability/power_cut_selftest.py"""
import os
import subprocess
import sys
import tempfile

import power_cut

SCENARIO = r'''
import os, sys
d = sys.argv[1]
def write(name, data, sync=True):
    fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, data)
    if sync:
        os.fsync(fd)
    os.close(fd)
def sync_directory(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)
write("kept", b"kept")
os.mkdir(os.path.join(d, "sub"))
write("sub/inner", b"inner")
sync_directory(os.path.join(d, "sub"))
write("old", b"old version")
sync_directory(d)
write("unsynced-data", b"synced first")
sync_directory(d)
fd = os.open(os.path.join(d, "unsynced-data"), os.O_WRONLY)
os.pwrite(fd, b"LATER", 0)
os.close(fd)
write("new.tmp", b"new version")
os.rename(os.path.join(d, "new.tmp"), os.path.join(d, "old"))
write("late", b"its data synced, its name not")
os.mkdir(os.path.join(d, "late-dir"))
write("late-dir/inner", b"synced inside a directory whose own name is not")
sync_directory(os.path.join(d, "late-dir"))
os.link(os.path.join(d, "kept"), os.path.join(d, "kept-link"))
'''

EXPECTED = {
    "kept": b"kept",
    "sub/": None,
    "sub/inner": b"inner",
    "old": b"old version",
    "unsynced-data": b"synced first",
}


def tree(root):
    found = {}
    for directory, directories, files in os.walk(root):
        relative = os.path.relpath(directory, root)
        for name in directories:
            found[os.path.normpath(os.path.join(relative, name)) + "/"] = None
        for name in files:
            with open(os.path.join(directory, name), "rb") as f:
                found[os.path.normpath(os.path.join(relative, name))] = f.read()
    return found


def main():
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "data")
        env = dict(os.environ, **power_cut.environment(power_cut.build_shim(scratch), data, os.path.join(scratch, "log")))
        subprocess.run([sys.executable, "-c", SCENARIO, data], env=env, check=True)
        before = tree(data)
        if set(before) != set(EXPECTED) | {"late", "late-dir/", "late-dir/inner", "kept-link"} or before["old"] != b"new version":
            print(f"power-cut self-test: the scenario did not run as written: {sorted(before)}")
            return 1
        power_cut.undo_unsynced(env["POWER_LOSS_LOG"], everything=True)
        after = tree(data)
        if after != EXPECTED:
            print(f"power-cut self-test: after the cut {after}, expected {EXPECTED}")
            return 1
    print("power-cut self-test: unsynced writes, names, a replacing rename and a link undone; synced ones kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
