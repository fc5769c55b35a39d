import AuditLog
import ImagingIndex

/// Prior-exam checks in the SQLite store: a check is written in the group commit (with
/// its audit event, when given); the statistics are four grouped queries, one per
/// column, merged by (institution, month).
extension SQLiteIndexStore: SupervisionStore {
    public func record(_ check: PriorCheck, audit: AuditEvent?) async throws(StoreError) {
        let result = await withCheckedContinuation { (c: CheckedContinuation<Result<[UpsertOutcome], StoreError>, Never>) in
            enqueue(Pending(records: [], audit: audit.map { [$0] } ?? [], write: { db throws(StoreError) in
                try SQLiteSupervision.insert(check, on: db)
            }) { c.resume(returning: $0) })
        }
        _ = try result.get()
    }

    public func query(_ query: StudyQuery, audit: (@Sendable ([StudyRecord]) -> AuditEvent)?,
                      check: @escaping @Sendable ([StudyRecord]) -> PriorCheck) async throws(StoreError) -> [StudyRecord] {
        try await self.query(query) { studies, done in
            let made = check(studies)
            return Pending(records: [], audit: audit.map { [$0(studies)] } ?? [],
                           write: { db throws(StoreError) in try SQLiteSupervision.insert(made, on: db) }, done: done)
        }
    }

    public func supervision(_ query: SupervisionQuery) async throws(StoreError) -> [SupervisionRow] {
        try await read { db throws(StoreError) in try SQLiteSupervision.rows(query, on: db) }
    }
}

enum SQLiteSupervision {
    static func insert(_ c: PriorCheck, on db: SQLiteConnection) throws(StoreError) {
        let s = try db.statement("""
            INSERT INTO prior_checks (checked_at, day, until_day, institution, region, patient_token, modality, body_part,
                                      exam_item, window_days, repeat_candidate, priors)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
            """)
        s.bind(1, Int(c.checkedAt))
        s.bind(2, c.day)
        s.bind(3, c.untilDay)
        s.bind(4, c.institution)
        s.bind(5, c.region)
        s.bind(6, c.patientToken)
        s.bind(7, c.modality)
        s.bind(8, c.bodyPart)
        s.bind(9, c.examItem)
        s.bind(10, c.windowDays)
        s.bind(11, c.repeatCandidate ? 1 : 0)
        s.bind(12, c.priors)
        _ = try s.step()
    }

    /// Each query yields (institution, month, count, patients) for one column.
    static var columns: [(WritableKeyPath<SupervisionRow, SupervisionCount>, String)] { [
        (\.studiesIndexed, """
            SELECT storage_unit, substr(study_date, 1, 6) AS month, count(*), count(DISTINCT patient_token) FROM studies
            WHERE study_date >= ?1 || '01' AND study_date <= ?2 || '31' AND (?3 IS NULL OR region = ?3)
            GROUP BY storage_unit, month
            """),
        (\.priorChecks, """
            SELECT institution, substr(day, 1, 6) AS month, count(*), count(DISTINCT patient_token) FROM prior_checks
            WHERE day >= ?1 || '01' AND day <= ?2 || '31' AND (?3 IS NULL OR region = ?3)
            GROUP BY institution, month
            """),
        (\.repeatCandidates, """
            SELECT institution, substr(day, 1, 6) AS month, count(*), count(DISTINCT patient_token) FROM prior_checks
            WHERE repeat_candidate AND day >= ?1 || '01' AND day <= ?2 || '31' AND (?3 IS NULL OR region = ?3)
            GROUP BY institution, month
            """),
        // A repeat study: indexed after the check (updated_at is in seconds: the same second
        // counts as after), dated from the
        // check's day to the end of its window, same patient and modality, and the body
        // part or exam item the check named. Counted once per study however many checks
        // it follows, under the first such check's institution and month.
        (\.repeatStudies, """
            SELECT institution, month, count(*), count(DISTINCT patient_token) FROM (
                SELECT s.id, min(c.institution || '|' || c.day) AS first, c.institution, substr(c.day, 1, 6) AS month,
                       s.patient_token
                FROM prior_checks c
                JOIN studies s ON s.patient_token = c.patient_token
                JOIN study_modalities m ON m.study_id = s.id AND m.modality = c.modality
                WHERE c.repeat_candidate AND c.day >= ?1 || '01' AND c.day <= ?2 || '31' AND (?3 IS NULL OR c.region = ?3)
                  AND s.study_date >= c.day AND s.study_date <= c.until_day AND s.updated_at >= c.checked_at / 1000
                  AND ((c.body_part IS NULL AND c.exam_item IS NULL) OR upper(s.body_part) = c.body_part
                       OR s.exam_item_code = c.exam_item)
                GROUP BY s.id
            )
            GROUP BY institution, month
            """),
    ] }

    static func rows(_ q: SupervisionQuery, on db: SQLiteConnection) throws(StoreError) -> [SupervisionRow] {
        var rows: [String: SupervisionRow] = [:]
        for (column, sql) in columns {
            let s = try db.statement(sql)
            s.bind(1, q.fromMonth)
            s.bind(2, q.toMonth)
            s.bind(3, q.region)
            while try s.step() {
                guard let institution = s.string(0), let month = s.string(1) else { continue }
                let key = institution + "|" + month
                var row = rows[key] ?? SupervisionRow(institution: institution, month: month)
                row[keyPath: column] = SupervisionCount(s.int(2) ?? 0, patients: s.int(3) ?? 0)
                rows[key] = row
            }
            s.reset()
        }
        return rows.values.sorted { ($0.month, $0.institution) < ($1.month, $1.institution) }
    }
}
