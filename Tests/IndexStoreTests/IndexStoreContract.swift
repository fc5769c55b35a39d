import AuditLog
import Foundation
import ImagingIndex
import IndexStore
import JSONText
import TestScratch
import XCTest

/// The tests every `IndexStore` must pass. An implementation's test case subclasses this
/// and returns a fresh, empty store from `makeStore()`; XCTest then runs every test here
/// against it. (This base class itself runs nothing.)
class IndexStoreContract: XCTestCase {
    func makeStore() throws -> IndexStore? { nil }

    func store() throws -> IndexStore {
        guard let s = try makeStore() else { throw XCTSkip("the contract runs in subclasses") }
        return s
    }

    static let storage = "91610000MA6TG0001A"
    static let otherStorage = "12610000435200100J"

    static func token(_ n: Int) -> String {
        "v1:" + Data((0..<32).map { UInt8(($0 + n * 31) % 256) }).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func record(_ n: Int, patient: Int = 1, date: String = "20241122", modalities: [String] = ["CT"],
                       storage: String = storage) -> StudyRecord {
        var r = StudyRecord(patientToken: token(patient), studyInstanceUID: "1.2.156.1.\(n)", studyDate: date,
                            modalitiesInStudy: modalities, storageUnit: storage,
                            retrieveURL: "https://pacs.example/dicomweb", region: "610100")
        r.accessionNumber = "A\(n)"
        r.studyTime = String(format: "%02d0000", n % 24)
        r.numberOfStudyRelatedInstances = n
        if n % 5 == 0 {
            var series = SeriesRecord(seriesInstanceUID: "1.2.156.1.\(n).1", modality: modalities[0])
            series.seriesNumber = 1
            series.numberOfSeriesRelatedInstances = n
            r.series = [series]
        }
        return r
    }

    func testUpsertThenQueryByToken() async throws {
        let s = try store()
        let records = (1...5).map { Self.record($0, date: "2024110\($0)") } + [Self.record(6, patient: 2)]
        let outcomes = try await s.upsert(records)
        XCTAssertEqual(outcomes, Array(repeating: .inserted, count: 6))
        let found = try await s.query(StudyQuery(patientToken: Self.token(1)))
        XCTAssertEqual(found.map(\.studyInstanceUID), (1...5).reversed().map { "1.2.156.1.\($0)" }, "newest first")
        XCTAssertEqual(found.first, records[4], "every field comes back as stored")
        let count = try await s.count()
        XCTAssertEqual(count, 6)
    }

    /// The AuditStore half of the contract, for stores that keep the log.
    func testAuditLeavesAreNumberedHashedAndCounted() async throws {
        let s = try store()
        guard let log = s as? AuditStore else { throw XCTSkip("this store keeps no audit log") }
        @Sendable func event(_ actor: String, _ counter: String, count: Int = 1) -> AuditEvent {
            AuditEvent(requestID: "r", actor: actor, eventID: .query, action: .read, outcome: .success,
                       operation: "GET /x", patientTokens: [Self.token(1)], count: count, counter: counter)
        }
        _ = try await s.upsert([Self.record(1), Self.record(2)], audit: event("urn:a", "uploads", count: 2))
        try await log.append([event("urn:b", "lookups"), event("urn:b", "lookups")])
        let found = try await s.query(StudyQuery(patientToken: Self.token(1))) { studies in
            event("urn:c", "lookups", count: studies.count)
        }
        XCTAssertEqual(found.count, 2)
        let size = try await log.auditSize()
        XCTAssertEqual(size, 4)
        let events = try await log.events(from: 0, limit: 10)
        XCTAssertEqual(events.map(\.index), [0, 1, 2, 3])
        for e in events {
            XCTAssertEqual(e.leafHash, MerkleTree.leafHash(Array(e.text.utf8)))
            XCTAssertEqual(try JSONDecoder().decode(AuditEvent.self, from: Data(e.text.utf8)).leafIndex, e.index)
        }
        let hashes = try await log.leafHashes(from: 0, count: 4)
        XCTAssertEqual(hashes, events.map(\.leafHash))
        let tail = try await log.leafHashes(from: 2, count: 10)
        XCTAssertEqual(tail, Array(hashes[2...]), "a range from the middle, cut short at the log's end")
        let usage = try await log.usage(day: AuditEvent.day())
        XCTAssertEqual(Set(usage.map { "\($0.actor) \($0.counter) \($0.count)" }),
                       ["urn:a uploads 1", "urn:a records 2", "urn:b lookups 2", "urn:c lookups 1"])
        let signer = try CheckpointSigner(keyPath: Scratch.path("contract") + ".pem")
        var frontier = MerkleFrontier()
        frontier.append(contentsOf: hashes.prefix(3))
        try await log.saveCheckpoint(signer.sign(origin: "o", treeSize: 3, root: frontier.root), frontier: frontier)
        frontier.append(hashes[3])
        try await log.saveCheckpoint(signer.sign(origin: "o", treeSize: 4, root: frontier.root), frontier: frontier)
        let checkpoints = try await log.checkpoints()
        XCTAssertEqual(checkpoints.map(\.treeSize), [3, 4])
        let latest = try await log.latestCheckpoint()
        XCTAssertEqual(latest?.checkpoint, checkpoints.last)
        XCTAssertEqual(latest?.frontier, frontier, "the frontier comes back as it was kept")
        XCTAssertEqual(latest?.frontier?.root, MerkleTree.root(hashes[...]))
    }

    /// A batch of queries answers each as it would be answered alone, in order, and with
    /// `audit` each leaves its own event (when the store keeps the log).
    func testABatchOfQueriesAnswersAndAuditsEachInOrder() async throws {
        let s = try store()
        _ = try await s.upsert([Self.record(1), Self.record(2), Self.record(3, patient: 2)])
        var ctOnly = StudyQuery(patientToken: Self.token(1))
        ctOnly.modalities = ["MR"]
        let queries = [StudyQuery(patientToken: Self.token(2)), StudyQuery(patientToken: Self.token(9)),
                       StudyQuery(patientToken: Self.token(1)), ctOnly]
        var alone: [[StudyRecord]] = []
        for query in queries { alone.append(try await s.query(query)) }
        let unaudited = try await s.query(queries, audit: nil)
        XCTAssertEqual(unaudited, alone)
        XCTAssertEqual(alone.map(\.count), [1, 0, 2, 0])
        guard let log = s as? AuditStore else { return }
        let before = try await log.auditSize()
        XCTAssertEqual(before, 0, "nothing audited without `audit`")
        let audited = try await s.query(queries) { i, found in
            AuditEvent(requestID: "batch-\(i)", actor: "urn:peer", eventID: .query, action: .read, outcome: .success,
                       operation: "GET /x", patientTokens: [], studyInstanceUIDs: found.map(\.studyInstanceUID),
                       count: found.count, counter: "lookups")
        }
        XCTAssertEqual(audited, alone)
        let events = try await log.events(from: 0, limit: 10).map { try JSONDecoder().decode(AuditEvent.self, from: Data($0.text.utf8)) }
        XCTAssertEqual(events.map(\.requestID), ["batch-0", "batch-1", "batch-2", "batch-3"])
        XCTAssertEqual(events.map(\.count), [1, 0, 2, 0])
    }

    /// An answer written from the store's own rows (`query(_:writing:audit:)`) is, byte for
    /// byte, the one written from the records `query` returns, in DICOM JSON and in the
    /// native API's form: every field, escapes, series, the
    /// series count made from the series, several modalities, an empty page. Its audit
    /// event is made of the written studies, named in order, durable before the call
    /// returns; without one they are counted, not named. What `queryAtOnce` answers, when
    /// it answers, is the same.
    func testAnswersWrittenInPlaceAreThoseWrittenFromTheRecords() async throws {
        let s = try store()
        var full = Self.record(10, date: "20241003", modalities: ["CT", "MR", "PT"])
        full.retrieveURL = "https://pacs.example/dicomweb/"
        full.studyDescription = "Chest \"low dose\" \\ follow-up\n\u{1}胸部"
        full.institutionName = "Xi'an No. 1 Hospital"
        full.timezoneOffset = "+0800"
        full.patientSex = "F"
        full.instanceAvailability = "ONLINE"
        full.numberOfStudyRelatedSeries = 3
        full.bodyPartExamined = "CHEST"
        full.examItemCode = "CT-CHEST-01"
        full.institutionCode = "12610000435200100J"
        full.patientBirthYear = 1958
        full.nhsaIndexCode = "A1"
        var bare = Self.record(11, date: "20241002")
        bare.studyTime = nil
        bare.accessionNumber = ""
        bare.numberOfStudyRelatedInstances = nil
        let seriesOnly = Self.record(15, patient: 2, date: "20241001")
        _ = try await s.upsert([full, bare, seriesOnly, Self.record(12, date: "20240901")])
        let write: @Sendable (any StudyFields, inout JSONWriter) -> Void = { study, out in
            Self.everyField(study, to: &out)
            out.element()
            DicomJSON.study(study, include: ["00080080", "00081030"], to: &out)
            out.element()
            study.writeNative(to: &out)
        }
        var october = StudyQuery()
        october.dateFrom = "20241001"
        october.dateTo = "20241031"
        var secondPage = StudyQuery(patientToken: Self.token(1))
        secondPage.limit = 2
        secondPage.offset = 1
        for query in [october, secondPage, StudyQuery(patientToken: Self.token(9))] {
            let records = try await s.query(query)
            var expected = JSONWriter()
            expected.array(records) { write($1, &$0) }
            let written = try await s.query(query, writing: write, audit: nil)
            XCTAssertEqual(String(decoding: written.json, as: UTF8.self), String(decoding: expected.bytes, as: UTF8.self))
            XCTAssertEqual(written.count, records.count)
            if let atOnce = s.queryAtOnce(query, writing: write) { XCTAssertEqual(atOnce, written, "answered at once") }
        }
        let octoberCount = try await s.query(october).count
        XCTAssertEqual(octoberCount, 3, "the first page held every kind of study")
        guard let log = s as? AuditStore else { return }
        let before = try await log.auditSize()
        XCTAssertEqual(before, 0, "nothing audited without `audit`")
        let audited = try await s.query(october, writing: write) { found in
            AuditEvent(requestID: "written", actor: "urn:c", eventID: .query, action: .read, outcome: .success,
                       operation: "GET /x", patientTokens: found.patientTokens, studyInstanceUIDs: found.studyInstanceUIDs,
                       count: found.count, counter: "lookups")
        }
        let octoberRecords = try await s.query(october)
        XCTAssertEqual(audited.patientTokens, octoberRecords.map(\.patientToken))
        XCTAssertEqual(audited.studyInstanceUIDs, octoberRecords.map(\.studyInstanceUID))
        let events = try await log.events(from: 0, limit: 10).map { try JSONDecoder().decode(AuditEvent.self, from: Data($0.text.utf8)) }
        XCTAssertEqual(events.map(\.studyInstanceUIDs), [audited.studyInstanceUIDs])
        XCTAssertEqual(events.map(\.patientTokens), [audited.patientTokens])
        XCTAssertEqual(events.first?.count, 3)
    }

    /// Every field `StudyFields` gives, as one JSON array (absent text as null).
    static func everyField(_ study: any StudyFields, to out: inout JSONWriter) {
        out.beginArray()
        for field in StudyText.allCases {
            out.element()
            study.withText(field) { text in
                if let text { out.string(utf8: text) } else { out.raw("null") }
            }
        }
        for field in StudyNumber.allCases {
            out.element()
            if let n = study.number(field) { out.int(n) } else { out.raw("null") }
        }
        out.element()
        out.beginArray()
        study.forEachModality { modality in
            out.element()
            out.string(utf8: modality)
        }
        out.endArray()
        out.endArray()
    }

    func testPurgeRemovesOnlyOneKeyVersion() async throws {
        let s = try store()
        var rotated = Self.record(3, patient: 2)
        rotated.patientToken = "v2:" + Self.token(2).dropFirst(3)
        rotated.modalitiesInStudy = ["CT", "MR"]
        var older = Self.record(4, patient: 2)
        older.patientToken = "v12:" + Self.token(2).dropFirst(3)
        _ = try await s.upsert([Self.record(1), Self.record(2, patient: 2), rotated, older])
        let purged = try await s.purgeTokens(keyVersion: 1)
        XCTAssertEqual(purged, 2)
        let left = try await s.count()
        XCTAssertEqual(left, 2, "v2 and v12 tokens stay")
        let old = try await s.query(StudyQuery(patientToken: Self.token(1)))
        XCTAssertTrue(old.isEmpty)
        var byModality = StudyQuery()
        byModality.modalities = ["CT"]
        let ct = try await s.query(byModality)
        XCTAssertEqual(Set(ct.map(\.studyInstanceUID)), ["1.2.156.1.3", "1.2.156.1.4"], "modality rows went with their studies")
        let again = try await s.purgeTokens(keyVersion: 1)
        XCTAssertEqual(again, 0)
    }

    func testSameIdentityUpdatesAndOtherStorageUnitIsAnotherStudy() async throws {
        let s = try store()
        _ = try await s.upsert([Self.record(1)])
        var changed = Self.record(1, modalities: ["MR"])
        changed.studyDescription = "re-sent"
        let again = try await s.upsert([changed, Self.record(1, storage: Self.otherStorage)])
        XCTAssertEqual(again, [.updated, .inserted])
        let count = try await s.count()
        XCTAssertEqual(count, 2)
        var q = StudyQuery(patientToken: Self.token(1))
        q.storageUnit = Self.storage
        let found = try await s.query(q)
        XCTAssertEqual(found.map(\.studyDescription), ["re-sent"])
        var byModality = StudyQuery()
        byModality.modalities = ["CT"]
        let ct = try await s.query(byModality)
        XCTAssertEqual(ct.map(\.storageUnit), [Self.otherStorage], "the update replaced CT by MR")
    }

    /// Hospitals send their index again: a study exactly as stored changes nothing, one
    /// field different is an update, and either way there is still one row.
    func testTheSameStudyAgainIsUnchangedAndOneFieldDifferentIsAnUpdate() async throws {
        let s = try store()
        var full = Self.record(5, modalities: ["CT", "PT"])
        full.timezoneOffset = "+0800"
        full.bodyPartExamined = "CHEST"
        full.studyDescription = "CT chest"
        full.examItemCode = "CT0101"
        full.numberOfStudyRelatedSeries = 1
        full.patientSex = "F"
        full.patientBirthYear = 1980
        full.institutionName = "Hospital"
        full.institutionCode = Self.storage
        full.instanceAvailability = "ONLINE"
        full.nhsaIndexCode = "\(Self.token(1))-202411220800-000000000-0000000000000-\(Self.storage)"
        let first = try await s.upsert([Self.record(1), full])
        XCTAssertEqual(first, [.inserted, .inserted])
        let again = try await s.upsert([Self.record(1), full])
        XCTAssertEqual(again, [.unchanged, .unchanged])
        var moved = full
        moved.instanceAvailability = "NEARLINE"
        let third = try await s.upsert([Self.record(1), moved])
        XCTAssertEqual(third, [.unchanged, .updated])
        var byUID = StudyQuery()
        byUID.studyInstanceUIDs = [full.studyInstanceUID]
        let found = try await s.query(byUID)
        XCTAssertEqual(found, [moved])
        let count = try await s.count()
        XCTAssertEqual(count, 2)
    }

    func testQueryFilters() async throws {
        let s = try store()
        _ = try await s.upsert([
            Self.record(1, date: "20241001", modalities: ["CT"]), Self.record(2, date: "20241015", modalities: ["MR", "CT"]),
            Self.record(3, date: "20241101", modalities: ["US"]), Self.record(4, patient: 2, date: "20241020", modalities: ["CT"]),
        ])
        var q = StudyQuery()
        q.modalities = ["CT"]
        q.dateFrom = "20241010"
        q.dateTo = "20241031"
        let ids = try await s.query(q).map(\.studyInstanceUID)
        XCTAssertEqual(ids, ["1.2.156.1.4", "1.2.156.1.2"])
        var mine = StudyQuery(patientToken: Self.token(1))
        mine.modalities = ["CT"]
        let mineCT = try await s.query(mine).map(\.studyInstanceUID)
        XCTAssertEqual(mineCT, ["1.2.156.1.2", "1.2.156.1.1"])
        var byUID = StudyQuery()
        byUID.studyInstanceUIDs = ["1.2.156.1.1", "1.2.156.1.3", "9.9"]
        let uids = try await s.query(byUID).map(\.studyInstanceUID)
        XCTAssertEqual(uids, ["1.2.156.1.3", "1.2.156.1.1"])
        var byAccession = StudyQuery()
        byAccession.accessionNumber = "A2"
        let accession = try await s.query(byAccession).map(\.studyInstanceUID)
        XCTAssertEqual(accession, ["1.2.156.1.2"])
        byAccession.accessionNumber = "A?"
        let wildcard = try await s.query(byAccession).map(\.studyInstanceUID)
        XCTAssertEqual(wildcard.count, 4)
        byAccession.accessionNumber = "a*"
        let caseSensitive = try await s.query(byAccession)
        XCTAssertTrue(caseSensitive.isEmpty)
        var paged = StudyQuery(patientToken: Self.token(1))
        paged.limit = 2
        paged.offset = 1
        let page = try await s.query(paged).map(\.studyInstanceUID)
        XCTAssertEqual(page, ["1.2.156.1.2", "1.2.156.1.1"])
    }

    /// A search by one modality keeps the store's order: date newest first, then time
    /// newest first (a study without one last), then the study first stored latest, whatever
    /// its UID; an update that moves a study's time moves it in that order, one that does not
    /// keeps its place; pages cut that order.
    func testOneModalityKeepsDateTimeArrivalOrder() async throws {
        let s = try store()
        func at(_ n: Int, _ date: String, _ time: String?) -> StudyRecord {
            var r = Self.record(n, date: date)
            r.studyTime = time
            return r
        }
        _ = try await s.upsert([
            at(10, "20241122", "120000"), at(1, "20241122", "090000"), at(3, "20241122", nil),
            at(4, "20241121", "230000"), at(5, "20241122", "080000"),
        ])
        _ = try await s.upsert([at(2, "20241122", "120000")])
        var q = StudyQuery()
        q.modalities = ["CT"]
        q.dateFrom = "20241101"
        q.dateTo = "20241130"
        let before = try await s.query(q).map(\.studyInstanceUID)
        XCTAssertEqual(before, ["1.2.156.1.2", "1.2.156.1.10", "1.2.156.1.1", "1.2.156.1.5", "1.2.156.1.3", "1.2.156.1.4"])
        var renamed = at(10, "20241122", "120000")
        renamed.accessionNumber = "B10"
        _ = try await s.upsert([at(5, "20241122", "120000"), renamed])
        let after = try await s.query(q).map(\.studyInstanceUID)
        XCTAssertEqual(after, ["1.2.156.1.2", "1.2.156.1.5", "1.2.156.1.10", "1.2.156.1.1", "1.2.156.1.3", "1.2.156.1.4"])
        q.limit = 2
        q.offset = 2
        let page = try await s.query(q).map(\.studyInstanceUID)
        XCTAssertEqual(page, ["1.2.156.1.10", "1.2.156.1.1"])
        var byPatient = StudyQuery(patientToken: Self.token(1))
        byPatient.dateFrom = "20241122"
        let samePatient = try await s.query(byPatient).map(\.studyInstanceUID)
        XCTAssertEqual(Array(samePatient.prefix(3)), ["1.2.156.1.2", "1.2.156.1.5", "1.2.156.1.10"], "every search keeps the same order")
    }

    func testSavedResponsesByScopeAndKey() async throws {
        let s = try store()
        let none = try await s.savedResponse(scope: "org-a", key: "k1")
        XCTAssertNil(none)
        try await s.saveResponse(SavedResponse(status: 202, body: Array("first".utf8), requestFingerprint: [1]), scope: "org-a", key: "k1")
        try await s.saveResponse(SavedResponse(status: 200, body: Array("second".utf8), requestFingerprint: [2]), scope: "org-a", key: "k1")
        let saved = try await s.savedResponse(scope: "org-a", key: "k1")
        XCTAssertEqual(saved, SavedResponse(status: 202, body: Array("first".utf8), requestFingerprint: [1]), "the first answer stands")
        let otherScope = try await s.savedResponse(scope: "org-b", key: "k1")
        XCTAssertNil(otherScope, "keys are per scope")
    }

    /// Reads that ended on a row (a count, a found key) must not pin an old snapshot.
    func testQueriesSeeEveryAcknowledgedWrite() async throws {
        let s = try store()
        try await s.saveResponse(SavedResponse(status: 200, body: [], requestFingerprint: []), scope: "o", key: "k")
        for n in 1...6 {
            _ = try await s.savedResponse(scope: "o", key: "k")
            let before = try await s.count()
            _ = try await s.upsert([Self.record(n)])
            let after = try await s.count()
            XCTAssertEqual(after, before + 1)
            let found = try await s.query(StudyQuery(patientToken: Self.token(1)))
            XCTAssertEqual(found.count, n)
        }
    }

    func testConcurrentBatchesAllLand() async throws {
        let s = try store()
        try await withThrowingTaskGroup(of: [UpsertOutcome].self) { group in
            for b in 0..<20 {
                group.addTask { try await s.upsert((0..<50).map { Self.record(b * 50 + $0, patient: b) }) }
            }
            for try await outcomes in group { XCTAssertEqual(outcomes.count, 50) }
        }
        let count = try await s.count()
        XCTAssertEqual(count, 1000)
        let one = try await s.query(StudyQuery(patientToken: Self.token(7)))
        XCTAssertEqual(one.count, 50)
    }
}
