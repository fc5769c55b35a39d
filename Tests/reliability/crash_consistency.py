#!/usr/bin/env python3
"""Crash consistency (issue #9): a regional node under a mixed workload is SIGKILLed at
random moments, CYCLES times (default 50; CI runs 5). After each restart every
acknowledged upload, lookup, workitem transition and audit leaf must be there, nothing
twice, `PRAGMA integrity_check` ok, and `imaging-gateway audit verify` passing (run with
the node stopped, so that it first files what the crash left pending, as a restart does).
At the end the outbox must drain to the national node with exactly the regional node's
studies, and the national node, the regional log's witness, must hold its last checkpoint
with no conflict kept.

With --power-cut each kill is also a power cut (power_cut.py): the writes no fsync had
covered, and the names no sync of their directory had, are undone, as a disk could have
lost them. Most of the regional node's kills
are then made by its shim right after a randomly chosen sync, so that cuts fall between
one file's sync and the next's (the first cut within the node's first start, while it
makes its files, schema and key); in a quarter of the cycles the national node loses
power too, and what it acknowledged to the regional node's outbox must survive.

Workload while the node is up, from six threads: two uploading 20-record batches
(hospital), two making token lookups (clinic), one making read requests (clinic), and a
reader taking and completing them once the node's AI stage (its default stub engine) has
passed them on. Each logs only what the node acknowledged (2xx) before the kill.

usage: Tests/reliability/crash_consistency.py [--cycles N] [--power-cut] [--bin PATH] [--dir DIR] [--seed S]
Standard library only. Exit status 0 when every check held, 1 with the first violations.
"""
import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

import power_cut
from nodes import Client, Node, wait_ready

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORG = "91610000MA6TG0001A"
TOKEN = "v1:" + "C" * 42 + "Q"
NATIONAL_PORT, REGIONAL_PORT = 19543, 19544


def record(uid, day):
    return json.dumps({"patientToken": TOKEN, "studyInstanceUID": uid, "studyDate": day, "modalitiesInStudy": ["CT"],
                       "storageUnit": ORG, "retrieveURL": "https://pacs.example/dicomweb", "region": "610100"})


class Workload:
    """What the node acknowledged, shared by the three threads and the checker."""

    def __init__(self, certs):
        self.hospital = Client(certs, "hospital", REGIONAL_PORT)
        self.clinic = Client(certs, "clinic", REGIONAL_PORT)
        self.reader = Client(certs, "reader", REGIONAL_PORT)
        self.lock = threading.Lock()
        self.uploaded, self.created, self.claimed, self.completed = set(), set(), {}, set()
        self.audited = 0  # acknowledged operations, each of which wrote an audit leaf
        self.running = False

    def uploads(self, cycle, lane):
        n = 0
        while self.running:
            uids = [f"1.2.156.900.{cycle}.{lane}{n}.{i}" for i in range(20)]
            n += 1
            try:
                status, _ = self.hospital.call("POST", "/v1/index/studies", "\n".join(record(u, "20241101") for u in uids),
                                               "application/x-ndjson")
            except OSError:
                return
            if status == 200:
                with self.lock:
                    self.uploaded.update(uids)
                    self.audited += 1

    def lookups(self):
        while self.running:
            try:
                status, _ = self.clinic.call("GET", f"/v1/patients/{TOKEN}/studies?purpose=TREAT&limit=5")
            except OSError:
                return
            if status == 200:
                with self.lock:
                    self.audited += 1

    def requests(self):
        while self.running:
            with self.lock:
                studies = sorted(self.uploaded)
            if not studies:
                time.sleep(0.01)
                continue
            body = json.dumps({"00404021": {"vr": "SQ", "Value": [{"0020000D": {"vr": "UI", "Value": [random.choice(studies)]}}]}})
            try:
                status, answer = self.clinic.call("POST", "/dicomweb/workitems", body, "application/dicom+json")
            except OSError:
                return
            if status == 201:
                with self.lock:
                    self.created.add(json.loads(answer)["00080018"]["Value"][0])
                    self.audited += 1

    def readers(self):
        while self.running:
            try:
                status, answer = self.reader.call("POST", "/v1/reads/next")
                if status != 200:
                    time.sleep(0.01)
                    continue
                item = json.loads(answer)
                with self.lock:
                    self.claimed[item["uid"]] = item["transactionUID"]
                    self.audited += 1
                done = json.dumps({"00741000": {"vr": "CS", "Value": ["COMPLETED"]},
                                   "00081195": {"vr": "UI", "Value": [item["transactionUID"]]}})
                status, _ = self.reader.call("PUT", f"/dicomweb/workitems/{item['uid']}/state", done, "application/dicom+json")
            except OSError:
                return
            if status == 200:
                with self.lock:
                    self.completed.add(item["uid"])
                    self.audited += 1

    def run_for(self, cycle, seconds):
        self.running = True
        threads = [threading.Thread(target=self.uploads, args=(cycle, lane)) for lane in (1, 2)]
        threads += [threading.Thread(target=self.lookups) for _ in range(2)]
        threads += [threading.Thread(target=self.requests), threading.Thread(target=self.readers)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        return threads


def unfiled(data):
    """Leaves the killed node kept in audit_pending beyond the audit file's end: the
    crash fell between the two files' commits, and the restart must put them back. None
    when the cut came in the node's first start, before both files and their tables were
    there: it had answered nothing yet."""
    if not os.path.exists(f"{data}/index-audit.sqlite"):
        return 0
    db = sqlite3.connect(f"file:{data}/index.sqlite?mode=ro", uri=True, timeout=30)
    try:
        db.execute("ATTACH ? AS audit", (f"file:{data}/index-audit.sqlite?mode=ro",))
        end = db.execute("SELECT coalesce(max(seq), 0) FROM audit.audit_events").fetchone()[0]
        return db.execute("SELECT count(*) FROM audit_pending WHERE seq > ?", (end,)).fetchone()[0]
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return 0
        raise
    finally:
        db.close()


def check(data, workload):
    """The violations found in the regional node's data directory (empty: all held)."""
    problems = []
    db = sqlite3.connect(f"file:{data}/index.sqlite?mode=ro", uri=True, timeout=30)
    db.execute("ATTACH ? AS audit", (f"file:{data}/index-audit.sqlite?mode=ro",))
    try:
        if db.execute("PRAGMA audit.integrity_check").fetchone()[0] != "ok":
            problems.append("PRAGMA integrity_check failed on the audit file")
        if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("PRAGMA integrity_check failed")
        stored = [r[0] for r in db.execute("SELECT study_uid FROM studies WHERE storage_unit = ?", (ORG,))]
        if len(stored) != len(set(stored)):
            problems.append(f"{len(stored) - len(set(stored))} studies stored twice")
        missing = workload.uploaded - set(stored)
        if missing:
            problems.append(f"{len(missing)} acknowledged studies lost, e.g. {sorted(missing)[:3]}")
        leaves = db.execute("SELECT count(*) FROM audit.audit_events").fetchone()[0]
        if leaves < workload.audited:
            problems.append(f"{leaves} audit leaves for {workload.audited} acknowledged operations")
        items = dict(db.execute("SELECT uid, stage FROM workitems"))
        lost = workload.created - set(items)
        if lost:
            problems.append(f"{len(lost)} acknowledged workitems lost, e.g. {sorted(lost)[:3]}")
        # A claim's lease may since have expired (ready again, or dead-lettered): the row stays.
        unclaimed = [u for u in workload.claimed if items.get(u) not in ("in-progress", "completed", "ready", "dead-letter")]
        if unclaimed:
            problems.append(f"{len(unclaimed)} acknowledged claims not held, e.g. {unclaimed[:3]}")
        undone = [u for u in workload.completed if items.get(u) != "completed"]
        if undone:
            problems.append(f"{len(undone)} acknowledged completions lost, e.g. {undone[:3]}")
    finally:
        db.close()
    return problems


def told(log, start, put_back):
    """Whether the node's start-up log said how many leaves it put back, as `unfiled` counted."""
    with open(log, errors="replace") as f:
        f.seek(start)
        said = sum(int(m) for m in re.findall(r"leaves=(\d+) .*audit: filed leaves", f.read()))
    if isinstance(put_back, int) and said != put_back:
        return [f"the node logged {said} audit leaves put back at start, the files held {put_back}"]
    return []


def verify(data, gateway):
    """`imaging-gateway audit verify` on a stopped node's directory."""
    verified = subprocess.run([gateway, "audit", "verify", "--data-dir", data], capture_output=True, text=True)
    if verified.returncode != 0:
        return ["audit verify: " + (verified.stdout + verified.stderr).strip()[-300:]]
    return []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=int(os.environ.get("CYCLES", "50")))
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build/debug/imaging-gateway"))
    parser.add_argument("--dir", default=os.path.join(ROOT, "Benchmarks/out/crash-consistency"))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--power-cut", action="store_true", help="undo the unsynced writes after each kill")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    shutil.rmtree(args.dir, ignore_errors=True)
    os.makedirs(args.dir)
    regional_data, national_data = f"{args.dir}/regional", f"{args.dir}/national"
    national = Node("national", [args.bin, "serve", "--data-dir", national_data, "--listen",
                                 f"127.0.0.1:{NATIONAL_PORT}", "--region", "100000", "--log-level", "warning"], args.dir,
                    env=dict(os.environ, IMAGING_GATEWAY_ROLE="national"))
    if args.power_cut:
        shim = power_cut.build_shim(args.dir)
        national.env.update(power_cut.environment(shim, national_data, f"{args.dir}/national-writes.log"))
        regional_shimmed = dict(os.environ, **power_cut.environment(shim, regional_data, f"{args.dir}/regional-writes.log"))
    national.start()
    certs = f"{args.dir}/national/dev-certs"
    for _ in range(100):
        if os.path.exists(certs + "/ca.pem"):
            break
        time.sleep(0.05)
    wait_ready(Client(certs, "clinic", NATIONAL_PORT))
    config = {"region": "610000", "role": "regional", "dataDirectory": regional_data,
              "listen": [f"127.0.0.1:{REGIONAL_PORT}"], "logLevel": "notice",
              "tls": {"certificate": f"{certs}/node.pem", "privateKey": f"{certs}/node-key.pem", "clientCA": f"{certs}/ca.pem"},
              "federation": {"gatherTo": f"https://localhost:{NATIONAL_PORT}"},
              # Offered to the national node as a witness every second: no crash may make
              # the regional log disagree with a checkpoint it already offered.
              "audit": {"checkpointSeconds": 1}}
    with open(f"{args.dir}/regional.json", "w") as f:
        json.dump(config, f)
    regional = Node("regional", [args.bin, "serve", "--config", f"{args.dir}/regional.json"], args.dir)
    workload = Workload(certs)
    print(f"crash consistency: {args.cycles} SIGKILLs{' and power cuts' if args.power_cut else ''}, seed {seed}, "
          f"in {args.dir}", flush=True)

    def start_for_workload(cycle):
        """Under the shim, journaling afresh, when the cycle ends in a power cut: only what
        the process that is cut wrote may be undone (the checks between write unjournaled)."""
        if not (args.power_cut and cycle < args.cycles):
            return regional.start()
        power_cut.forget(regional_shimmed)
        # The first cut falls in the node's first start or just after it: files, schema, keys.
        cut_at = random.randrange(1, 40) if cycle == 0 else random.randrange(20, 600)
        regional.start(dict(regional_shimmed, POWER_LOSS_CUT_AT=str(cut_at)))

    try:
        start_for_workload(0)
        wait_ready(workload.clinic, node=regional)
        for cycle in range(args.cycles):
            threads = workload.run_for(cycle, random.uniform(0.3, 2.0))
            self_cut = regional.proc.poll() is not None
            national_cut = args.power_cut and random.random() < 0.25  # while it takes the outbox's records
            if national_cut:
                national.kill()
            regional.kill()
            workload.running = False
            for t in threads:
                t.join()
            lost = ""
            if args.power_cut:
                lost = f", {'cut by the shim after a sync' if self_cut else 'killed'}; " + power_cut.cut(regional_shimmed)
                if national_cut:
                    lost += "; national node " + power_cut.cut(national.env)
                    power_cut.forget(national.env)
                    national.start()
                    wait_ready(Client(certs, "clinic", NATIONAL_PORT))
            try:
                put_back = unfiled(regional_data)
            except sqlite3.Error as error:
                put_back = f"unknown, the files cannot be read ({error})"
            log_start = os.path.getsize(f"{args.dir}/regional.log")
            regional.start()
            if wait_ready(workload.clinic, node=regional):
                try:
                    problems = check(regional_data, workload)
                except sqlite3.Error as error:
                    problems = [f"the data directory cannot be read: {error}"]
                problems += told(f"{args.dir}/regional.log", log_start, put_back)
                regional.stop()
                problems += verify(regional_data, args.bin)
            else:
                problems = ["the node did not start again; see regional.log"]
            start_for_workload(cycle + 1)
            wait_ready(workload.clinic, node=regional)
            print(f"cycle {cycle + 1}: {len(workload.uploaded)} studies, {len(workload.created)} workitems, "
                  f"{len(workload.completed)} completed acknowledged" + lost
                  + (f", audit leaves put back at start: {put_back}" if put_back else "") + "; "
                  + ("; ".join(problems) or "all present"), flush=True)
            if problems:
                return 1
        operator = Client(certs, "operator", REGIONAL_PORT)
        due = time.time() + 120
        while time.time() < due:
            status, body = operator.call("GET", "/readyz")
            if status == 200 and json.loads(body).get("gathering", {}).get("lagRecords") == 0:
                break
            time.sleep(0.2)
        # The national node, as the regional log's witness, catches up with its last
        # checkpoint: every offer since the first had to extend the one before, across
        # every crash.
        witness, caught_up = Client(certs, "operator", NATIONAL_PORT), False
        while time.time() < due and not caught_up:
            mine = json.loads(operator.call("GET", "/v1/audit/checkpoint")[1])["checkpoint"]
            status, held = witness.call("GET", "/v1/audit/witness?origin=imaging-gateway/610000")
            caught_up = mine["treeSize"] == 0 or (status == 200 and json.loads(held).get("witnessed") == mine)
            time.sleep(0 if caught_up else 0.2)
        regional.stop()
        national.stop()
        counts = []
        for name in ("regional", "national"):
            db = sqlite3.connect(f"file:{args.dir}/{name}/index.sqlite?mode=ro", uri=True)
            counts.append(db.execute("SELECT count(*), count(DISTINCT study_uid) FROM studies WHERE storage_unit = ?",
                                     (ORG,)).fetchone())
            db.close()
        print(f"outbox drained: regional {counts[0][0]} studies, national {counts[1][0]} ({counts[1][1]} distinct)", flush=True)
        if counts[0] != counts[1]:
            print("the national node's studies differ from the regional node's", flush=True)
            return 1
        kept = sqlite3.connect(f"file:{national_data}/index-audit.sqlite?mode=ro", uri=True)
        witnessed, conflicts = (kept.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                                for table in ("witnessed_checkpoints", "witness_conflicts"))
        kept.close()
        print(f"witnessed: {witnessed} checkpoints of the regional log, {conflicts} conflicts"
              + ("" if caught_up else "; the witness never held the regional log's last checkpoint"), flush=True)
        return 1 if conflicts or not caught_up else 0
    finally:
        regional.stop()
        national.stop()


if __name__ == "__main__":
    sys.exit(main())
