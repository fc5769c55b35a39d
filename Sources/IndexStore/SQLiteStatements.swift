import Foundation
import ImagingIndex
import JSONText
import Synchronization

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
    /// The statements one batch of records runs, looked up once per batch: looked up per
    /// record, their texts were built by interpolation, hashed for the connection's cache,
    /// and every binding cleared though each use binds them all again, 7 % of the writer's
    /// time in an upload. What must stay true: every use binds every parameter its text
    /// has, since nothing clears the last record's values.
    struct Upsert {
        private let find, insert, modality: Statement
        private let db: SQLiteConnection

        init(on db: SQLiteConnection) throws(StoreError) {
            self.db = db
            find = try db.statement(Self.findText)
            insert = try db.statement(Self.insertText)
            modality = try db.statement(Self.modalityText)
        }

        func callAsFunction(_ r: StudyRecord, now: Int) throws(StoreError) -> UpsertOutcome {
            find.reset()
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
                let update = try db.statement(Self.updateText)
                SQLiteWrite.bind(r, update, now: now)
                update.bind(24, existing)
                _ = try update.step()
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
                insert.reset()
                SQLiteWrite.bind(r, insert, now: now)
                _ = try insert.step()
                id = db.lastInsertRowID
                outcome = .inserted
            }
            for m in r.modalitiesInStudy {
                modality.reset()
                modality.bind(1, m)
                modality.bind(2, r.studyDate)
                modality.bind(3, r.studyTime ?? "")
                modality.bind(4, id)
                _ = try modality.step()
            }
            return outcome
        }

        private static let findText = "SELECT \(SQLiteSchema.columns), id FROM studies WHERE study_uid = ?1 AND storage_unit = ?2"
        private static let insertText = """
            INSERT INTO studies (\(SQLiteSchema.columns), updated_at, has_series)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23,
                    ?22 IS NOT NULL)
            """
        private static let updateText = """
            UPDATE studies SET patient_token = ?3, study_date = ?4, study_time = ?5, timezone_offset = ?6, accession = ?7,
            modalities = ?8, body_part = ?9, description = ?10, exam_item_code = ?11, series_count = ?12,
            instance_count = ?13, patient_sex = ?14, birth_year = ?15, institution_name = ?16, institution_code = ?17,
            retrieve_url = ?18, availability = ?19, region = ?20, nhsa_index_code = ?21, series_json = ?22,
            has_series = ?22 IS NOT NULL, updated_at = ?23
            WHERE id = ?24
            """
        private static let modalityText =
            "INSERT OR IGNORE INTO study_modalities (modality, study_date, study_time, study_id) VALUES (?1, ?2, ?3, ?4)"
    }

    fileprivate static func bind(_ r: StudyRecord, _ s: Statement, now: Int) {
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
///
/// Every value has a fixed parameter number (`Parameter`), and the lists follow in order,
/// so a query's text depends on its `Shape` alone and is built once per shape: building
/// it for every query was 2 % of a token lookup's CPU. A number the text does not use is
/// bound all the same, which SQLite allows below the highest number the text does use.
enum SQLiteQuery {
    /// What a query's SQL text depends on: which fields are set, and how many values
    /// each list holds.
    struct Shape: Hashable {
        var token = false
        var uids = 0
        var accession = Accession.none
        var storageUnit = false
        var modalities = 0
        var dateFrom = false
        var dateTo = false

        enum Accession: Hashable {
            case none, exact, pattern
        }

        init(_ q: StudyQuery) {
            token = q.patientToken != nil
            uids = q.studyInstanceUIDs.count
            if let a = q.accessionNumber { accession = SQLiteQuery.isPattern(a) ? .pattern : .exact }
            storageUnit = q.storageUnit != nil
            modalities = q.modalities.count
            dateFrom = q.dateFrom != nil
            dateTo = q.dateTo != nil
        }
    }

    private enum Parameter: Int32 {
        case token = 1, accession, storageUnit, dateFrom, dateTo, limit, offset
        /// The modalities come from here on, then the UIDs.
        static let lists: Int32 = 8
    }

    /// The texts built so far, emptied past `textCacheLimit` as the statement cache is:
    /// a client can send a UID list of any length, and each length is a shape.
    private static let texts = Mutex<[Shape: SQLText]>([:])
    static let textCacheLimit = 64
    static var cachedTexts: Int { texts.withLock { $0.count } }

    static func run(_ q: StudyQuery, on db: SQLiteConnection) throws(StoreError) -> [StudyRecord] {
        let s = try prepared(q, on: db)
        var out: [StudyRecord] = []
        while try s.step() { out.append(record(s)) }
        return out
    }

    /// `run`, each study written by `write` from its row as the row is read.
    /// `named`: the studies' tokens and UIDs are collected too, for an audit event. A
    /// patient's studies share one token, kept once.
    static func write(_ q: StudyQuery, on db: SQLiteConnection, named: Bool,
                      _ write: (any StudyFields, inout JSONWriter) -> Void) throws(StoreError) -> WrittenStudies {
        let s = try prepared(q, on: db)
        // A QIDO-RS study is some 900 bytes; room for the first page of 100 saves the
        // writer's doublings on the common search, without reserving a huge limit's worth.
        // A patient has a few: 90 KB for each token lookup was a block large enough to make
        // glibc consolidate its free lists at every one.
        var out = JSONWriter(capacity: 64 + 900 * min(max(q.limit, 1), q.isShort ? 8 : 100))
        var tokens: [String] = []
        var uids: [String] = []
        var count = 0
        out.beginArray()
        while try s.step() {
            let row = StudyRow(s)
            if named {
                if let last = tokens.last, row.withText(.patientToken, { $0?.elementsEqual(last.utf8) ?? false }) {
                    tokens.append(last)
                } else {
                    tokens.append(row.string(.patientToken))
                }
                uids.append(row.string(.studyUID))
            }
            count += 1
            out.element()
            write(row, &out)
        }
        out.endArray()
        return named ? WrittenStudies(json: out.bytes, patientTokens: tokens, studyInstanceUIDs: uids)
            : WrittenStudies(json: out.bytes, count: count)
    }

    private static func prepared(_ q: StudyQuery, on db: SQLiteConnection) throws(StoreError) -> Statement {
        let s = try db.statement(sql(for: q))
        s.bind(Parameter.token.rawValue, q.patientToken)
        // GLOB is case-sensitive like DICOM SH matching; '[' is its only other metacharacter.
        s.bind(Parameter.accession.rawValue, q.accessionNumber.map { isPattern($0) ? $0.replacingOccurrences(of: "[", with: "[[]") : $0 })
        s.bind(Parameter.storageUnit.rawValue, q.storageUnit)
        s.bind(Parameter.dateFrom.rawValue, q.dateFrom)
        s.bind(Parameter.dateTo.rawValue, q.dateTo)
        s.bind(Parameter.limit.rawValue, max(0, q.limit))
        s.bind(Parameter.offset.rawValue, max(0, q.offset))
        for (i, modality) in q.modalities.enumerated() { s.bind(Parameter.lists + Int32(i), modality) }
        for (i, uid) in q.studyInstanceUIDs.enumerated() { s.bind(Parameter.lists + Int32(q.modalities.count + i), uid) }
        return s
    }

    /// The SQL text that runs `q`.
    static func sql(for q: StudyQuery) -> SQLText {
        let shape = Shape(q)
        if let text = texts.withLock({ $0[shape] }) { return text }
        let text = SQLText(sql(for: shape))
        texts.withLock {
            if $0.count >= textCacheLimit { $0.removeAll() }
            $0[shape] = text
        }
        return text
    }

    private static func isPattern(_ accession: String) -> Bool { accession.contains("*") || accession.contains("?") }

    private static func sql(for shape: Shape) -> String {
        func p(_ parameter: Parameter) -> String { "?\(parameter.rawValue)" }
        let modalities = (0..<shape.modalities).map { "?\(Parameter.lists + Int32($0))" }.joined(separator: ", ")
        let uids = (0..<shape.uids).map { "?\(Parameter.lists + Int32(shape.modalities + $0))" }.joined(separator: ", ")
        var clauses: [String] = []
        var from = "studies s"
        var order = "s.study_date DESC, s.study_time DESC, s.id DESC"
        if shape.token { clauses.append("s.patient_token = \(p(.token))") }
        if shape.uids > 0 { clauses.append("s.study_uid IN (\(uids))") }
        switch shape.accession {
        case .none: break
        case .exact: clauses.append("s.accession = \(p(.accession))")
        case .pattern: clauses.append("s.accession GLOB \(p(.accession))")
        }
        if shape.storageUnit { clauses.append("s.storage_unit = \(p(.storageUnit))") }
        let dateColumn: String
        if shape.modalities == 1 && !shape.token && shape.uids == 0 {
            // One modality: walk the (modality, date, time, id) index backwards and stop at
            // the limit. The rows come out in the contract's order with no sort at all,
            // which is why ties go by id and not by UID: sorting each date and time's
            // studies by UID was 12-22 % of a month+CT search's CPU at 1 M studies.
            from = "study_modalities m JOIN studies s ON s.id = m.study_id"
            clauses.append("m.modality = \(modalities)")
            dateColumn = "m.study_date"
            order = "m.study_date DESC, m.study_time DESC, m.study_id DESC"
        } else {
            if shape.modalities > 0, shape.token || shape.uids > 0 {
                // A patient's or a UID's few studies are found by their own index; each is
                // then checked for the modality. Collecting the modality's studies first
                // (the join below) read every CT of the date range for one patient: 1.5 s
                // at 1 M studies.
                clauses.append("EXISTS (SELECT 1 FROM study_modalities m WHERE m.study_id = s.id AND m.modality IN (\(modalities)))")
            } else if shape.modalities > 0 {
                var inner = ["m.modality IN (\(modalities))"]
                if shape.dateFrom { inner.append("m.study_date >= \(p(.dateFrom))") }
                if shape.dateTo { inner.append("m.study_date <= \(p(.dateTo))") }
                from += " JOIN (SELECT DISTINCT m.study_id FROM study_modalities m WHERE \(inner.joined(separator: " AND "))) mm ON mm.study_id = s.id"
            }
            dateColumn = "s.study_date"
        }
        if shape.dateFrom { clauses.append("\(dateColumn) >= \(p(.dateFrom))") }
        if shape.dateTo { clauses.append("\(dateColumn) <= \(p(.dateTo))") }
        return "SELECT \(shape.token ? SQLiteSchema.tokenIndexColumns : SQLiteSchema.qualifiedColumns) FROM \(from)"
            + (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "))
            + " ORDER BY \(order) LIMIT \(p(.limit)) OFFSET \(p(.offset))"
    }
}

extension StudyQuery {
    /// One patient's studies: read through the index that leads with the token, never
    /// more rows than that patient has, tens of microseconds on a warm reader. Such a query
    /// runs on its caller's thread when it can (`SQLiteReaderPool.readHere`);
    /// any other may scan a date range or a long UID list and goes to a reader's thread.
    var isShort: Bool { patientToken != nil }
}
