import ReadQueue

/// The workitems table: one row per workitem, its changing fields rewritten on every
/// transition (a row is small, and one statement per change keeps the writer's work flat).
enum SQLiteWorkitems {
    static let columns = """
        uid, clinic, study_uid, storage_unit, retrieve_url, region, priority, triage_priority, label, \
        expected_completion, created_at, stage, holder, transaction_uid, lease_deadline, attempts, ai_attempts, \
        ai_result, report, reason, cancel_requested, redrive_of, waiting_since, updated_at, modalities, body_part
        """

    /// The fields a transition may change, as `?N` of `save`'s binding; the rest are fixed
    /// when the workitem is created.
    private static let update = """
        UPDATE workitems SET triage_priority = ?8, stage = ?12, holder = ?13, transaction_uid = ?14, lease_deadline = ?15, \
        attempts = ?16, ai_attempts = ?17, ai_result = ?18, report = ?19, reason = ?20, cancel_requested = ?21, \
        waiting_since = ?23, updated_at = ?24 WHERE uid = ?1
        """
    private static let insert = """
        INSERT INTO workitems (\(columns)) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
        ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)
        """
    private static let select = "SELECT \(columns) FROM workitems WHERE uid = ?1"
    private static let selectOpen = "SELECT \(columns) FROM workitems WHERE stage IN ("
        + Workitem.Stage.allCases.filter { !$0.isFinal }.map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")"

    /// Three changes in four are transitions of a stored workitem: an UPDATE finds it by
    /// its key and touches only the stage's index. A creation finds nothing to update and
    /// is inserted. (An upsert tried the insert first, and paid for its failure on every
    /// transition.)
    static func save(_ w: Workitem, on db: SQLiteConnection, now: Int64) throws(StoreError) {
        let s = try db.statement(update)
        bindChanging(w, now: now, to: s)
        _ = try s.step()
        guard db.changes == 0 else { return }
        let fresh = try db.statement(insert)
        bindChanging(w, now: now, to: fresh)
        fresh.bind(2, w.clinic)
        fresh.bind(3, w.studyInstanceUID)
        fresh.bind(4, w.storageUnit)
        fresh.bind(5, w.retrieveURL)
        fresh.bind(6, w.region)
        fresh.bind(7, w.priority.rawValue)
        fresh.bind(9, w.label)
        fresh.bind(10, Int(w.expectedCompletion))
        fresh.bind(11, Int(w.createdAt))
        fresh.bind(22, w.redriveOf)
        fresh.bind(25, w.modalities.joined(separator: ","))
        fresh.bind(26, w.bodyPart)
        _ = try fresh.step()
    }

    /// The key and the fields `update` sets.
    private static func bindChanging(_ w: Workitem, now: Int64, to s: Statement) {
        s.bind(1, w.uid)
        s.bind(8, w.triagePriority?.rawValue)
        s.bind(12, w.stage.rawValue)
        s.bind(13, w.holder)
        s.bind(14, w.transactionUID)
        s.bind(15, w.leaseDeadline.map { Int($0) })
        s.bind(16, w.attempts)
        s.bind(17, w.aiAttempts)
        s.bind(18, w.aiResult)
        s.bind(19, w.report)
        s.bind(20, w.reason)
        s.bind(21, w.cancelRequested ? 1 : 0)
        s.bind(23, Int(w.waitingSince))
        s.bind(24, Int(now))
    }

    static func load(_ uid: String, on db: SQLiteConnection) throws(StoreError) -> Workitem? {
        let s = try db.statement(select)
        s.bind(1, uid)
        return try s.step() ? try row(s) : nil
    }

    static func loadOpen(on db: SQLiteConnection) throws(StoreError) -> [Workitem] {
        let s = try db.statement(selectOpen)
        var items: [Workitem] = []
        while try s.step() { items.append(try row(s)) }
        return items
    }

    static func search(_ q: WorkitemQuery, on db: SQLiteConnection) throws(StoreError) -> [Workitem] {
        var conditions: [String] = []
        var text: [String] = []
        if !q.stages.isEmpty {
            conditions.append("stage IN (\(q.stages.map { "'\($0.rawValue)'" }.joined(separator: ",")))")
        }
        if let p = q.priority { conditions.append("min(priority, coalesce(triage_priority, priority)) = \(p.rawValue)") }
        if let label = q.label { text.append(label); conditions.append("label = ?\(text.count)") }
        if let clinic = q.clinic { text.append(clinic); conditions.append("clinic = ?\(text.count)") }
        if let uid = q.studyInstanceUID { text.append(uid); conditions.append("study_uid = ?\(text.count)") }
        let sql = "SELECT \(columns) FROM workitems" + (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "))
            + " ORDER BY created_at DESC, uid LIMIT ?\(text.count + 1) OFFSET ?\(text.count + 2)"
        let s = try db.statement(sql)
        for (i, value) in text.enumerated() { s.bind(Int32(i + 1), value) }
        s.bind(Int32(text.count + 1), q.limit)
        s.bind(Int32(text.count + 2), q.offset)
        var items: [Workitem] = []
        while try s.step() { items.append(try row(s)) }
        return items
    }

    private static func row(_ s: Statement) throws(StoreError) -> Workitem {
        guard let priority = Workitem.Priority(rawValue: s.int(6) ?? -1), let stage = Workitem.Stage(rawValue: s.string(11) ?? "")
        else { throw .engine("workitem row \(s.string(0) ?? "?") holds an unknown priority or stage") }
        var w = Workitem(uid: s.string(0) ?? "", clinic: s.string(1) ?? "", studyInstanceUID: s.string(2) ?? "",
                         storageUnit: s.string(3) ?? "", retrieveURL: s.string(4), region: s.string(5),
                         modalities: (s.string(24) ?? "").split(separator: ",").map(String.init),
                         bodyPart: s.string(25), priority: priority, label: s.string(8) ?? "", expectedCompletion: Int64(s.int(9) ?? 0), createdAt: Int64(s.int(10) ?? 0),
                         stage: stage, redriveOf: s.string(21))
        w.triagePriority = s.int(7).flatMap(Workitem.Priority.init(rawValue:))
        w.holder = s.string(12)
        w.transactionUID = s.string(13)
        w.leaseDeadline = s.int(14).map { Int64($0) }
        w.attempts = s.int(15) ?? 0
        w.aiAttempts = s.int(16) ?? 0
        w.aiResult = s.string(17)
        w.report = s.string(18)
        w.reason = s.string(19)
        w.cancelRequested = s.int(20) == 1
        w.waitingSince = Int64(s.int(22) ?? 0)
        return w
    }
}
