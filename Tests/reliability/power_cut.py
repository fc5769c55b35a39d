"""Power cuts for crash_consistency.py: a node runs under power_loss.so, which journals
what every write to its data directory replaced and marks every sync; after the node is
killed, `cut` undoes the writes no sync had covered, as a disk could have lost them.
Standard library only."""
import os
import random
import shutil
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def build_shim(directory):
    """Compiles power_loss.c into `directory` with cc, or the clang the Swift toolchain brings."""
    shim = os.path.join(directory, "power_loss.so")
    compiler = shutil.which("cc") or shutil.which("clang")
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", shim, os.path.join(HERE, "power_loss.c"), "-ldl"],
                   check=True)
    return shim


def environment(shim, data, journal):
    """The variables that put a node's writes to `data` under the shim (the directory must
    exist before the node starts: the shim resolves it once)."""
    os.makedirs(data, exist_ok=True)
    return {"LD_PRELOAD": shim, "POWER_LOSS_DIR": data, "POWER_LOSS_LOG": journal, "POWER_LOSS_CUT_AT": "0"}


def forget(env):
    """Starts the journal afresh: for the next process, which alone may be cut."""
    if os.path.exists(env["POWER_LOSS_LOG"]):
        os.remove(env["POWER_LOSS_LOG"])


def cut(env):
    """Undoes, in a killed node's data directory, the writes no sync had covered: all of
    them or, with even odds, each with even odds. Says what it undid."""
    everything = random.random() < 0.5
    undone = undo_unsynced(env["POWER_LOSS_LOG"], everything)
    for name in os.listdir(env["POWER_LOSS_DIR"]):
        if name.endswith("-shm"):  # what SQLite's first opener would throw away
            os.remove(os.path.join(env["POWER_LOSS_DIR"], name))
    return (f"power cut undid {'all' if everything else 'a random half of the'} unsynced changes: "
            + (", ".join(f"{n} to {name}" for name, n in sorted(undone.items())) or "none"))


def undo_unsynced(journal_path, everything):
    """Undoes the journaled changes no later sync covered, newest first (so that undoing all
    of them is exact): writes and truncations not covered by a sync of their file, and
    names (files created, directories made, renames, links) not covered by a sync of their
    directory. A write that grew a file leaves zeros past the old end when not everything
    is undone. Returns how many changes were undone, by file name.

    Journal records (power_loss.c): a kind byte ('W' write, 'T' truncate, 'S' sync of a
    file; 'C' create, 'M' mkdir, 'R' rename, 'L' link, 'D' sync of a directory), five
    little-endian 64-bit fields (path length, offset, size before, length of the change,
    length of the old bytes), the path, the old bytes. A sync's offset is the journal's
    length when that sync began: every record it covers came before."""
    with open(journal_path, "rb") as f:
        journal = f.read()
    changes, synced, at = [], {}, 0
    while at < len(journal):
        kind = journal[at:at + 1]
        path_length, offset, before, length, old_length = struct.unpack_from("<5Q", journal, at + 1)
        start, at = at, at + 41
        path = journal[at:at + path_length].decode()
        old = journal[at + path_length:at + path_length + old_length]
        at += path_length + old_length
        if kind in (b"S", b"D"):
            synced[path] = max(synced.get(path, 0), offset)
        else:
            changes.append((start, kind, path, offset, before, length, old))

    def durable(start, kind, path):
        if kind in (b"W", b"T"):
            return start < synced.get(path, 0)
        names = path.split("\n")
        return all(start < synced.get(os.path.dirname(name), 0) for name in names)

    undone = {}
    for start, kind, path, offset, before, length, old in reversed(changes):
        if durable(start, kind, path) or not (everything or random.random() < 0.5):
            continue
        if kind in (b"W", b"T"):
            if not os.path.exists(path):
                continue  # its name was undone or removed since (removals are not journaled)
            with open(path, "r+b") as f:
                f.seek(offset)
                f.write(old)
                if kind == b"T" and before < offset:
                    f.truncate(before)
                elif kind == b"W" and offset + length > before:
                    if everything:
                        f.truncate(before)
                    else:
                        f.seek(max(offset, before))
                        f.write(bytes(offset + length - max(offset, before)))
        elif kind == b"R":
            source, target = path.split("\n")
            if not os.path.exists(target):
                continue
            os.rename(target, source)
            if length:  # it had replaced a file: that one comes back
                with open(target, "wb") as f:
                    f.write(old)
                os.chmod(target, before)
            path = target
        elif kind == b"M":
            if not os.path.isdir(path):
                continue
            shutil.rmtree(path)
        elif not os.path.isfile(path):  # 'C', 'L': the name alone goes
            continue
        else:
            os.remove(path)
        name = os.path.basename(path) + ("/" if kind == b"M" else "")
        undone[name] = undone.get(name, 0) + 1
    return undone
