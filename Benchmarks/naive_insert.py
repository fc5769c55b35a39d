"""The reference for the index's ingest figure (issue #3): the naive way to put studies
into SQLite, one INSERT per record (and one for its modality row), each 1 000-record
batch in one durable transaction (WAL, synchronous=FULL, as the node; the benchmark's
uploads are 1 000-record batches too), into a copy of the node's own database, so the
schema, its indexes and the rows already stored are the node's. The studies are made as
`gateway-bench seed` makes them (BenchCore/Scenario.swift, SyntheticStudies.record), with
numbers past the node's, so every insert is new. Measured at 1 M stored studies here:
8 317 rows/s this way; a transaction per row 2 565/s; one transaction for all 19 701/s
(the issue puts "the naive one-row-at-a-time insert" at about 13 000/s here).

usage: naive_insert.py NODE_DB COPY_DB FROM COUNT     prints "naive <rate> rows/s"
"""
import os
import sqlite3
import sys
import time

MODALITIES = ["CT", "CT", "CT", "MR", "MR", "DX", "DX", "DX", "US", "MG", "PT", "NM", "XA"]
REGIONS = ["610100", "610300", "610400", "110100", "310100", "440100", "510100", "320100", "330100", "420100"]
UNITS = 200
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
BATCH = 1000
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
MASK = (1 << 64) - 1


def storage_unit(u):
    if u == 0:
        return "91610000MA6TG0001A"
    body = "91" + REGIONS[u % len(REGIONS)] + "MA" + f"{u:07d}"
    total = sum(ALPHABET.index(c) * w for c, w in zip(body, WEIGHTS))
    return body + ALPHABET[(31 - total % 31) % 31]


def token(patient):
    x = (patient * 0x9E3779B97F4A7C15 + 1) & MASK
    raw = []
    for _ in range(32):
        x ^= x >> 33
        x = (x * 0xFF51AFD7ED558CCD) & MASK
        raw.append((x >> 24) & 0xFF)
    bits = acc = 0
    out = []
    for b in raw:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 6:
            bits -= 6
            out.append(B64[(acc >> bits) & 63])
    out.append(B64[(acc << (6 - bits)) & 63])
    return "v1:" + "".join(out)


def study(s):
    day = (s * 2654435761) % 1826
    year, month, dom = 2020 + day // 366, (day % 366) // 31 % 12 + 1, day % 28 + 1
    u = s % UNITS
    date = f"{year}{month:02d}{dom:02d}"
    return (f"1.2.156.600.{u}.{s}", storage_unit(u), token(s // 4), date, f"{s % 24:02d}3000", f"A{s}",
            MODALITIES[s % len(MODALITIES)], s % 900 + 1, f"https://pacs{u}.example/dicomweb", REGIONS[u % len(REGIONS)])


def main():
    node_db, copy_db, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(copy_db + suffix):
            os.remove(copy_db + suffix)
    source = sqlite3.connect(f"file:{node_db}?mode=ro", uri=True)
    db = sqlite3.connect(copy_db, isolation_level=None)
    source.backup(db)
    source.close()
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    rows = [study(s) for s in range(first, first + count)]
    started = time.perf_counter()
    for i, (uid, unit, tok, date, tm, acc, modality, instances, url, region) in enumerate(rows):
        if i % BATCH == 0:
            db.execute("BEGIN")
        cur = db.execute(
            "INSERT INTO studies (study_uid, storage_unit, patient_token, study_date, study_time, accession, modalities,"
            " instance_count, retrieve_url, region, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (uid, unit, tok, date, tm, acc, modality, instances, url, region, int(time.time())))
        db.execute("INSERT INTO study_modalities (modality, study_date, study_time, study_id) VALUES (?, ?, ?, ?)",
                   (modality, date, tm or "", cur.lastrowid))
        if i % BATCH == BATCH - 1 or i == count - 1:
            db.execute("COMMIT")
    seconds = time.perf_counter() - started
    db.close()
    print(f"naive {count / seconds:.0f} rows/s ({count} rows, one INSERT each, {BATCH} to a transaction, in {seconds:.1f} s)")


if __name__ == "__main__":
    main()
