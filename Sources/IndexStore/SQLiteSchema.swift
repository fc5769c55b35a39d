import Foundation

/// Versioned schema of the SQLite store: `PRAGMA user_version` says which migrations ran;
/// each runs once, in its own transaction, in order. Append new ones; never edit one
/// that has shipped.
enum SQLiteSchema {
    static let migrations: [String] = [
        """
        CREATE TABLE studies (
            id INTEGER PRIMARY KEY,
            study_uid TEXT NOT NULL,
            storage_unit TEXT NOT NULL,
            patient_token TEXT NOT NULL,
            study_date TEXT NOT NULL,
            study_time TEXT,
            timezone_offset TEXT,
            accession TEXT,
            modalities TEXT NOT NULL,
            body_part TEXT,
            description TEXT,
            exam_item_code TEXT,
            series_count INTEGER,
            instance_count INTEGER,
            patient_sex TEXT,
            birth_year INTEGER,
            institution_name TEXT,
            institution_code TEXT,
            retrieve_url TEXT NOT NULL,
            availability TEXT,
            region TEXT NOT NULL,
            nhsa_index_code TEXT,
            updated_at INTEGER NOT NULL,
            UNIQUE (study_uid, storage_unit)
        );
        CREATE INDEX studies_by_token ON studies (patient_token, study_date);
        CREATE INDEX studies_by_storage ON studies (storage_unit, study_date);
        CREATE INDEX studies_by_accession ON studies (accession) WHERE accession IS NOT NULL;
        CREATE TABLE study_modalities (
            modality TEXT NOT NULL,
            study_date TEXT NOT NULL,
            study_id INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
            PRIMARY KEY (modality, study_date, study_id)
        ) WITHOUT ROWID;
        CREATE INDEX study_modalities_by_study ON study_modalities (study_id);
        """,
        """
        CREATE TABLE idempotency (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            status INTEGER NOT NULL,
            body BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (scope, key)
        ) WITHOUT ROWID;
        """,
        "ALTER TABLE studies ADD COLUMN series_json TEXT;",
        "ALTER TABLE idempotency ADD COLUMN fingerprint BLOB NOT NULL DEFAULT x'';",
        """
        CREATE TABLE audit_events (
            seq INTEGER PRIMARY KEY,
            event TEXT NOT NULL,
            leaf_hash BLOB NOT NULL
        );
        CREATE TABLE audit_checkpoints (
            tree_size INTEGER PRIMARY KEY,
            checkpoint TEXT NOT NULL
        );
        CREATE TABLE usage (
            day TEXT NOT NULL,
            actor TEXT NOT NULL,
            counter TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (day, actor, counter)
        ) WITHOUT ROWID;
        """,
        """
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY,
            record TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        """,
        // Outbox numbers must never be reused (a plain rowid restarts at 1 once the table
        // is empty, and the national node then sees an old idempotency key with new
        // records), and must differ from a previous database's: AUTOINCREMENT, and an
        // epoch drawn once per database.
        """
        CREATE TABLE outbox_numbered (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            record TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        INSERT INTO outbox_numbered (seq, record, created_at) SELECT seq, record, created_at FROM outbox;
        DROP TABLE outbox;
        ALTER TABLE outbox_numbered RENAME TO outbox;
        CREATE TABLE node_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        INSERT INTO node_meta (key, value) VALUES ('outbox_epoch', lower(hex(randomblob(8))));
        """,
        """
        CREATE TABLE workitems (
            uid TEXT PRIMARY KEY,
            clinic TEXT NOT NULL,
            study_uid TEXT NOT NULL,
            storage_unit TEXT NOT NULL,
            retrieve_url TEXT,
            region TEXT,
            modalities TEXT NOT NULL,
            body_part TEXT,
            priority INTEGER NOT NULL,
            triage_priority INTEGER,
            label TEXT NOT NULL,
            expected_completion INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            stage TEXT NOT NULL,
            holder TEXT,
            transaction_uid TEXT,
            lease_deadline INTEGER,
            attempts INTEGER NOT NULL,
            ai_attempts INTEGER NOT NULL,
            ai_result TEXT,
            report TEXT,
            reason TEXT,
            cancel_requested INTEGER NOT NULL,
            redrive_of TEXT,
            waiting_since INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX workitems_open ON workitems (stage)
            WHERE stage NOT IN ('completed', 'canceled', 'dead-letter');
        CREATE INDEX workitems_by_clinic ON workitems (clinic, created_at);
        CREATE INDEX workitems_by_stage ON workitems (stage, created_at);
        """,
        """
        CREATE TABLE prior_checks (
            id INTEGER PRIMARY KEY,
            checked_at INTEGER NOT NULL,
            day TEXT NOT NULL,
            until_day TEXT NOT NULL,
            institution TEXT NOT NULL,
            region TEXT NOT NULL,
            patient_token TEXT NOT NULL,
            modality TEXT NOT NULL,
            body_part TEXT,
            exam_item TEXT,
            window_days INTEGER NOT NULL,
            repeat_candidate INTEGER NOT NULL,
            priors INTEGER NOT NULL
        );
        CREATE INDEX prior_checks_by_day ON prior_checks (day);
        CREATE INDEX prior_checks_by_token ON prior_checks (patient_token);
        """,
        "ALTER TABLE audit_checkpoints ADD COLUMN frontier BLOB;",
        // Every prior check inserted into it at a random place (tokens are random), one
        // more page per check for each commit and checkpoint to write, growing with the
        // table; its one reader, erasing a retired key version's rows, is rare enough to
        // scan. The supervision join starts from prior_checks by day.
        "DROP INDEX prior_checks_by_token;",
        // The audit tables moved to a file of their own (SQLiteAudit); `moveAudit` copies
        // and drops the ones migration 5 made here.
        "CREATE TABLE audit_pending (seq INTEGER PRIMARY KEY, event TEXT NOT NULL);",
        // The study's time joins the (modality, date) key, so that a QIDO-RS search by
        // modality and dates, in the store's order (then date, time, UID; since session 20
        // date, time, id, which this key yields with no sort at all), sorts only studies
        // sharing a date and a time instead of reading every study of the last day it
        // reaches (156 CT studies a day at 1 M). A primary key column of a WITHOUT ROWID
        // table cannot be NULL: a study without a time has '', which sorts last in
        // descending order as NULL does. Rebuilds the table: 4.7 s at 1 M studies.
        """
        CREATE TABLE study_modalities_by_time (
            modality TEXT NOT NULL,
            study_date TEXT NOT NULL,
            study_time TEXT NOT NULL DEFAULT '',
            study_id INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
            PRIMARY KEY (modality, study_date, study_time, study_id)
        ) WITHOUT ROWID;
        INSERT INTO study_modalities_by_time (modality, study_date, study_time, study_id)
            SELECT m.modality, m.study_date, coalesce(s.study_time, ''), m.study_id
            FROM study_modalities m JOIN studies s ON s.id = m.study_id;
        DROP TABLE study_modalities;
        ALTER TABLE study_modalities_by_time RENAME TO study_modalities;
        CREATE INDEX study_modalities_by_study ON study_modalities (study_id);
        """,
        // The study's time joins the token index as well, so that a patient's studies come
        // out of it in the store's order (date, time, id: the rowid ends every index entry)
        // and the lookup sorts nothing. The sort opened a temporary B-tree for every lookup,
        // 12 of a lookup query's 56 µs (Python's sqlite3 at 1 M studies). A NULL time sorts
        // last in descending order, as the store's order wants. Rebuilt: 3.3 s at 1 M studies.
        """
        DROP INDEX studies_by_token;
        CREATE INDEX studies_by_token ON studies (patient_token, study_date, study_time);
        """,
        // Every transition changes a workitem's stage, and SQLite evaluated this partial
        // index's `NOT IN` list for the old and the new row by building a temporary B-tree
        // of its three values each time: about a third of the upsert's cost, for an index
        // only the start-up load read. That load finds the open stages in
        // workitems_by_stage instead.
        "DROP INDEX IF EXISTS workitems_open;",
        // Every new study dirtied a randomly placed leaf of this index too, one of five, for
        // each commit and checkpoint to write (ingest of 100 000 on 1.1 M, two nodes side by
        // side: 1.04–1.26 x without it). Its readers do without: a storage unit is asked
        // for only with a study UID, which the unique (study_uid, storage_unit) index
        // answers; the requeue walks the table by id; the monthly supervision count over
        // a date range scanned the table in 0.78 s at 1.1 M studies against 1.1–1.5 s
        // through this index.
        "DROP INDEX IF EXISTS studies_by_storage;",
        // A patient's studies are answered from the token index alone. It carries every
        // column a lookup returns but the study's series, and the id before them, so its
        // entries come out in the store's order (date, time, id) with no sort. Through the
        // narrow index a lookup read the index's leaf and then the table's leaf of each
        // study it found, and a patient's studies, stored years apart, lie on as many
        // table pages. At 1 M studies a lookup now makes 1.07 reads from the OS instead of
        // 2.0, and SQLite's share of the node's CPU fell from 24 to 19 % (RESULTS.md,
        // index, session 35).
        //
        // The series stay out: some 150 bytes each, tens of them in a study, they would
        // spill its entry onto overflow pages and thin every interior page of the index
        // to a few entries, deepening every lookup's descent. `has_series` says which
        // studies to read from the table for them; what must stay true is that it is 1
        // wherever series_json is not NULL (the writes keep it exactly that).
        //
        // The cost: the index holds the rest of each row a second time (99 → 224 MB at
        // 1.2 M studies without series), and an upload writes it twice (ingest 2.51–2.65 ×
        // the naive insert, against 2.33–2.79 × before). Rebuilt: 5.2 s at 1.2 M studies.
        """
        ALTER TABLE studies ADD COLUMN has_series INTEGER NOT NULL DEFAULT 0;
        UPDATE studies SET has_series = 1 WHERE series_json IS NOT NULL;
        DROP INDEX studies_by_token;
        CREATE INDEX studies_by_token ON studies (
            patient_token, study_date, study_time, id, study_uid, storage_unit, timezone_offset, accession,
            modalities, body_part, description, exam_item_code, series_count, instance_count, patient_sex,
            birth_year, institution_name, institution_code, retrieve_url, availability, region, nhsa_index_code,
            has_series);
        """,
    ]

    /// The audit file's own schema, versioned the same way. Its first migration makes the
    /// tables migrations 5 and 10 made in the index's file (those stay as shipped, for the
    /// files they still have to bring up to date before `moveAudit`).
    static let auditMigrations: [String] = [
        """
        CREATE TABLE audit_events (
            seq INTEGER PRIMARY KEY,
            event TEXT NOT NULL,
            leaf_hash BLOB NOT NULL
        );
        CREATE TABLE audit_checkpoints (
            tree_size INTEGER PRIMARY KEY,
            checkpoint TEXT NOT NULL,
            frontier BLOB
        );
        CREATE TABLE usage (
            day TEXT NOT NULL,
            actor TEXT NOT NULL,
            counter TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (day, actor, counter)
        ) WITHOUT ROWID;
        """,
        // Other nodes' logs this node witnesses (SQLiteWitness).
        """
        CREATE TABLE witnessed_logs (
            origin TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            public_key TEXT NOT NULL,
            checkpoint TEXT NOT NULL
        );
        CREATE TABLE witnessed_checkpoints (
            origin TEXT NOT NULL,
            tree_size INTEGER NOT NULL,
            checkpoint TEXT NOT NULL,
            received INTEGER NOT NULL,
            PRIMARY KEY (origin, tree_size)
        ) WITHOUT ROWID;
        CREATE TABLE witness_conflicts (
            id INTEGER PRIMARY KEY,
            origin TEXT NOT NULL,
            actor TEXT NOT NULL,
            checkpoint TEXT NOT NULL,
            reason TEXT NOT NULL,
            received INTEGER NOT NULL
        );
        """,
    ]

    /// Moves the audit tables an older build kept in the index's file into the attached
    /// audit file: copied in one transaction (the audit file's), dropped in another (the
    /// index's). A crash between them leaves both copies, and the next start copies
    /// nothing new (OR IGNORE: same keys, same rows) and drops.
    static func moveAudit(_ db: SQLiteConnection) throws(StoreError) {
        let old = try db.statement("SELECT count(*) FROM main.sqlite_master WHERE type = 'table' AND name = 'audit_events'")
        _ = try old.step()
        let found = old.int(0) ?? 0
        old.reset()
        guard found > 0 else { return }
        try db.transaction { () throws(StoreError) in
            try db.exec("""
                INSERT OR IGNORE INTO audit.audit_events SELECT seq, event, leaf_hash FROM main.audit_events;
                INSERT OR IGNORE INTO audit.audit_checkpoints SELECT tree_size, checkpoint, frontier FROM main.audit_checkpoints;
                INSERT OR IGNORE INTO audit.usage SELECT day, actor, counter, n FROM main.usage;
                """)
        }
        try db.transaction { () throws(StoreError) in
            try db.exec("DROP TABLE main.audit_events; DROP TABLE main.audit_checkpoints; DROP TABLE main.usage;")
        }
    }

    /// Runs the migrations of `list` the file has not run yet. `upgrading` is told how many
    /// first, when the file had a schema already (version 0 is a new, empty file).
    static func migrate(_ db: SQLiteConnection, _ list: [String] = migrations,
                        upgrading: (_ migrations: Int) -> Void = { _ in }) throws(StoreError) {
        let version = try db.statement("PRAGMA user_version")
        _ = try version.step()
        let current = version.int(0) ?? 0
        // An unfinished statement would make DROP TABLE fail with "table is locked".
        version.reset()
        guard current <= list.count else {
            throw .engine("the database has schema version \(current), newer than this build's \(list.count)")
        }
        if current > 0 && current < list.count { upgrading(list.count - current) }
        for (i, sql) in list.enumerated().dropFirst(current) {
            try db.transaction { () throws(StoreError) in
                try db.exec(sql)
                try db.exec("PRAGMA user_version = \(i + 1)")
            }
        }
    }

    /// `columns` for a SELECT over `studies s` that may join other tables.
    static let qualifiedColumns = selecting { "s." + $0 }

    /// `qualifiedColumns` for a search through the token index, which holds every column
    /// but the series: those are read from the table, and only for a study that has some.
    static let tokenIndexColumns = selecting {
        $0 == "series_json" ? "CASE WHEN s.has_series THEN (SELECT t.series_json FROM studies t WHERE t.id = s.id) END" : "s." + $0
    }

    /// `columns`, each as `column` writes it, in order.
    private static func selecting(_ column: (String) -> String) -> String {
        columns.split(separator: ",").map { column($0.trimmingCharacters(in: .whitespacesAndNewlines)) }.joined(separator: ", ")
    }

    /// How many `columns` there are: the index of a column selected after them.
    static let columnCount = Int32(columns.split(separator: ",").count)

    static let columns = """
        study_uid, storage_unit, patient_token, study_date, study_time, timezone_offset, accession, modalities, \
        body_part, description, exam_item_code, series_count, instance_count, patient_sex, birth_year, \
        institution_name, institution_code, retrieve_url, availability, region, nhsa_index_code, series_json
        """
}
