import Foundation
import ImagingIndex

/// Writing one record: find its identity, then leave that row alone when it already says
/// what the record says, update it, or insert a new one, and keep its modality rows (the
/// date + modality index) in step.
///
/// Why the comparison: hospitals send their index again (a nightly resend, an agent
/// re-run), and an update of an unchanged study rewrote its row, three index entries and
/// its modality rows, about 17 KB of WAL and checkpoint a record, moved `updated_at`
/// (which the repeat-study statistics read as "indexed after the check") and queued the
/// record for the national node again. Reading the row costs what finding it did.
enum SQLiteWrite {
    static func upsert(_ r: StudyRecord, on db: SQLiteConnection, now: Int) throws(StoreError) -> UpsertOutcome {
        let find = try db.statement("SELECT \(SQLiteSchema.columns), id FROM studies WHERE study_uid = ?1 AND storage_unit = ?2")
        find.bind(1, r.studyInstanceUID)
        find.bind(2, r.storageUnit)
        var existing: Int?
        if try find.step() {
            if SQLiteQuery.record(find) == r { return .unchanged }
            existing = find.int(SQLiteSchema.columnCount)
        }
        let outcome: UpsertOutcome
        let id: Int
        if let existing {
            let s = try db.statement("""
                UPDATE studies SET patient_token = ?3, study_date = ?4, study_time = ?5, timezone_offset = ?6, accession = ?7,
                modalities = ?8, body_part = ?9, description = ?10, exam_item_code = ?11, series_count = ?12,
                instance_count = ?13, patient_sex = ?14, birth_year = ?15, institution_name = ?16, institution_code = ?17,
                retrieve_url = ?18, availability = ?19, region = ?20, nhsa_index_code = ?21, series_json = ?22, updated_at = ?23
                WHERE id = ?24
                """)
            bind(r, s, now: now)
            s.bind(24, existing)
            _ = try s.step()
            let clear = try db.statement("DELETE FROM study_modalities WHERE study_id = ?1")
            clear.bind(1, existing)
            _ = try clear.step()
            id = existing
            outcome = .updated
        } else {
            // The new id comes from last_insert_rowid, not RETURNING: SQLite runs RETURNING as
            // a trigger, which makes the INSERT a statement that may abort after writing,
            // and such a statement copies every page it touches (a leaf of each index) to a
            // statement journal first: 12 KB more written a study (RESULTS.md, index).
            let s = try db.statement("""
                INSERT INTO studies (\(SQLiteSchema.columns), updated_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)
                """)
            bind(r, s, now: now)
            _ = try s.step()
            id = db.lastInsertRowID
            outcome = .inserted
        }
        let m = try db.statement(
            "INSERT OR IGNORE INTO study_modalities (modality, study_date, study_time, study_id) VALUES (?1, ?2, ?3, ?4)")
        for modality in r.modalitiesInStudy {
            m.reset()
            m.bind(1, modality)
            m.bind(2, r.studyDate)
            m.bind(3, r.studyTime ?? "")
            m.bind(4, id)
            _ = try m.step()
        }
        return outcome
    }

    private static func bind(_ r: StudyRecord, _ s: Statement, now: Int) {
        s.bind(1, r.studyInstanceUID)
        s.bind(2, r.storageUnit)
        s.bind(3, r.patientToken)
        s.bind(4, r.studyDate)
        s.bind(5, r.studyTime)
        s.bind(6, r.timezoneOffset)
        s.bind(7, r.accessionNumber)
        s.bind(8, r.modalitiesInStudy.joined(separator: "\\"))
        s.bind(9, r.bodyPartExamined)
        s.bind(10, r.studyDescription)
        s.bind(11, r.examItemCode)
        s.bind(12, r.numberOfStudyRelatedSeries)
        s.bind(13, r.numberOfStudyRelatedInstances)
        s.bind(14, r.patientSex)
        s.bind(15, r.patientBirthYear)
        s.bind(16, r.institutionName)
        s.bind(17, r.institutionCode)
        s.bind(18, r.retrieveURL)
        s.bind(19, r.instanceAvailability)
        s.bind(20, r.region)
        s.bind(21, r.nhsaIndexCode)
        s.bind(22, r.series.map(SeriesRecord.storedJSON))
        s.bind(23, now)
    }
}

/// Reading: one SQL statement per query shape, built from the fields that are set, so
/// that SQLite picks the index that fits (token, UID, storage unit, or modality + date).
/// Values are bound, never written into the text, so that the statement cache holds a
/// shape once however many values callers send (a LIMIT/OFFSET in the text once grew
/// it by one statement per offset a client asked for).
enum SQLiteQuery {
    static func run(_ q: StudyQuery, on db: SQLiteConnection) throws(StoreError) -> [StudyRecord] {
        let (sql, args) = sql(for: q)
        let s = try db.statement(sql)
        for (i, a) in args.enumerated() { s.bind(Int32(i + 1), a) }
        s.bind(Int32(args.count + 1), max(0, q.limit))
        s.bind(Int32(args.count + 2), max(0, q.offset))
        var out: [StudyRecord] = []
        while try s.step() { out.append(record(s)) }
        return out
    }

    /// The statement for `q` and the text values it binds, in order; the limit and the
    /// offset come after them.
    static func sql(for q: StudyQuery) -> (String, [String]) {
        var clauses: [String] = []
        var args: [String] = []
        func arg(_ v: String) -> String {
            args.append(v)
            return "?\(args.count)"
        }
        var from = "studies s"
        var order = "s.study_date DESC, s.study_time DESC, s.id DESC"
        if let t = q.patientToken { clauses.append("s.patient_token = \(arg(t))") }
        if !q.studyInstanceUIDs.isEmpty {
            clauses.append("s.study_uid IN (\(q.studyInstanceUIDs.map { arg($0) }.joined(separator: ", ")))")
        }
        if let a = q.accessionNumber {
            if a.contains("*") || a.contains("?") {
                // GLOB is case-sensitive like DICOM SH matching; '[' is its only other metacharacter.
                clauses.append("s.accession GLOB \(arg(a.replacingOccurrences(of: "[", with: "[[]")))")
            } else {
                clauses.append("s.accession = \(arg(a))")
            }
        }
        if let u = q.storageUnit { clauses.append("s.storage_unit = \(arg(u))") }
        let dateColumn: String
        if q.modalities.count == 1 && q.patientToken == nil && q.studyInstanceUIDs.isEmpty {
            // One modality: walk the (modality, date, time, id) index backwards and stop at
            // the limit. The rows come out in the contract's order with no sort at all,
            // which is why ties go by id and not by UID: sorting each date and time's
            // studies by UID was 12-22 % of a month+CT search's CPU at 1 M studies.
            from = "study_modalities m JOIN studies s ON s.id = m.study_id"
            clauses.append("m.modality = \(arg(q.modalities[0]))")
            dateColumn = "m.study_date"
            order = "m.study_date DESC, m.study_time DESC, m.study_id DESC"
        } else {
            if !q.modalities.isEmpty, q.patientToken != nil || !q.studyInstanceUIDs.isEmpty {
                // A patient's or a UID's few studies are found by their own index; each is
                // then checked for the modality. Collecting the modality's studies first
                // (the join below) read every CT of the date range for one patient: 1.5 s
                // at 1 M studies.
                clauses.append("EXISTS (SELECT 1 FROM study_modalities m WHERE m.study_id = s.id AND m.modality IN ("
                               + q.modalities.map { arg($0) }.joined(separator: ", ") + "))")
            } else if !q.modalities.isEmpty {
                var inner = ["m.modality IN (\(q.modalities.map { arg($0) }.joined(separator: ", ")))"]
                if let f = q.dateFrom { inner.append("m.study_date >= \(arg(f))") }
                if let t = q.dateTo { inner.append("m.study_date <= \(arg(t))") }
                from += " JOIN (SELECT DISTINCT m.study_id FROM study_modalities m WHERE \(inner.joined(separator: " AND "))) mm ON mm.study_id = s.id"
            }
            dateColumn = "s.study_date"
        }
        if let f = q.dateFrom { clauses.append("\(dateColumn) >= \(arg(f))") }
        if let t = q.dateTo { clauses.append("\(dateColumn) <= \(arg(t))") }
        let sql = "SELECT \(SQLiteSchema.qualifiedColumns) FROM \(from)"
            + (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "))
            + " ORDER BY \(order) LIMIT ?\(args.count + 1) OFFSET ?\(args.count + 2)"
        return (sql, args)
    }

    /// The stored `CT\MR` list; most studies have one modality, which needs no split (the
    /// split and its array were 3 % of a 100-study search).
    static func modalities(_ stored: String) -> [String] {
        if stored.isEmpty { return [] }
        if !stored.utf8.contains(UInt8(ascii: "\\")) { return [stored] }
        return stored.split(separator: "\\").map(String.init)
    }

    /// A row of `SQLiteSchema.columns`, in their order, from column 0.
    static func record(_ s: Statement) -> StudyRecord {
        var r = StudyRecord(patientToken: s.string(2) ?? "", studyInstanceUID: s.string(0) ?? "", studyDate: s.string(3) ?? "",
                            modalitiesInStudy: modalities(s.string(7) ?? ""),
                            storageUnit: s.string(1) ?? "", retrieveURL: s.string(17) ?? "", region: s.string(19) ?? "")
        r.studyTime = s.string(4)
        r.timezoneOffset = s.string(5)
        r.accessionNumber = s.string(6)
        r.bodyPartExamined = s.string(8)
        r.studyDescription = s.string(9)
        r.examItemCode = s.string(10)
        r.numberOfStudyRelatedSeries = s.int(11)
        r.numberOfStudyRelatedInstances = s.int(12)
        r.patientSex = s.string(13)
        r.patientBirthYear = s.int(14)
        r.institutionName = s.string(15)
        r.institutionCode = s.string(16)
        r.instanceAvailability = s.string(18)
        r.nhsaIndexCode = s.string(20)
        r.series = s.string(21).flatMap(SeriesRecord.fromStoredJSON)
        return r
    }
}
