import Foundation
import GatewayNet
import ImagingIndex
import IndexStore
import ReadQueue

/// A clinic's read request, checked, with its study found in the index: here first, then
/// (when the request names the patient token) in the other regions through federation.
enum ReadCreation {
    /// Expected completion when the request names none: HIGH 1 h, MEDIUM 24 h, LOW 72 h.
    static let defaultWindowMs: [Workitem.Priority: Int64] = [.high: 3_600_000, .medium: 86_400_000, .low: 259_200_000]

    static func workitem(_ request: HTTPRequest, index: IndexStore, auditor: Auditor, federation: Federation?,
                         region: String) async throws -> Workitem {
        guard ["application/dicom+json", "application/json"].contains(request.mediaType) else {
            throw HTTPError(415, "unsupported_media_type", "Send the workitem as application/dicom+json.")
        }
        let uid = try workitemUID(request)
        let asked: UPSJSON.CreateRequest
        do {
            asked = try UPSJSON.create(request.body)
        } catch {
            throw HTTPError(400, "invalid_workitem", "\(error.attribute.isEmpty ? "" : error.attribute + ": ")\(error.message)")
        }
        var query = StudyQuery()
        query.studyInstanceUIDs = [asked.studyInstanceUID]
        query.storageUnit = asked.storageUnit
        query.limit = 2
        var found = try await IndexRoutes.storeCall { () throws(StoreError) in try await index.query(query) }
        var holder: String?
        if found.isEmpty, let token = asked.patientToken, federation != nil {
            var byToken = StudyQuery(patientToken: token)
            byToken.limit = 1000
            let (studies, _) = try await ScopedLookup.run(request, token: token, purpose: "TREAT", query: byToken, scope: "all",
                                                         federation: federation, region: region, store: index, auditor: auditor)
            found = studies.filter {
                $0.studyInstanceUID == asked.studyInstanceUID && (asked.storageUnit == nil || $0.storageUnit == asked.storageUnit)
            }
            holder = found.first?.region
        }
        guard let study = found.first else {
            throw HTTPError(404, "study_not_found",
                            "The study is not in the index (here, or in the regions asked when Patient ID carries its token).")
        }
        guard found.count == 1 else {
            throw HTTPError(409, "ambiguous_study",
                            "Several storage units hold this Study Instance UID; name one in the input item's Institution Code Sequence.")
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return Workitem(uid: uid, clinic: request.peer?.organization ?? "", studyInstanceUID: study.studyInstanceUID,
                        storageUnit: study.storageUnit, retrieveURL: asked.retrieveURL ?? study.retrieveURL,
                        region: holder ?? study.region, modalities: study.modalitiesInStudy, bodyPart: study.bodyPartExamined,
                        priority: asked.priority, label: asked.label,
                        expectedCompletion: asked.expectedCompletion ?? now + defaultWindowMs[asked.priority]!, createdAt: now)
    }

    /// The workitem UID a client chose (PS3.18: `POST /workitems?{uid}`, also taken as
    /// `?workitem={uid}`), or a new one.
    static func workitemUID(_ request: HTTPRequest) throws(HTTPError) -> String {
        let query = request.query
        guard !query.isEmpty else { return UIDs.make() }
        let given = query.count == 1 ? (query[0].value.isEmpty ? query[0].name : query[0].name == "workitem" ? query[0].value : nil) : nil
        guard let given, Codes.isUID(given) else {
            throw HTTPError(400, "invalid_workitem_uid", "The query is the new workitem's UID (?1.2.3 or ?workitem=1.2.3), or empty.")
        }
        return given
    }
}
