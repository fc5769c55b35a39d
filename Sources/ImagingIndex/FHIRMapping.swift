import JSONText

/// Study records as FHIR R4 ImagingStudy + Endpoint resources (DOMAIN.md §5), written
/// straight into the answer's bytes with members in sorted key order. Built as Foundation
/// dictionaries and serialized by JSONSerialization, a search Bundle cost a seventh of the
/// node's CPU in the soak's mix, where FHIR is a tenth of the requests, and its share grew
/// as the process aged (the allocator's free lists lengthen; RESULTS.md, session 10).
public enum FHIRMapping {
    /// The identifier system of patient tokens (Patient.identifier in subject references).
    public static let tokenSystem = "urn:imaging-gateway:patient-token"
    public static let dcmSystem = "http://dicom.nema.org/resources/ontology/DCM"

    /// A stable resource id for a study identity (UID, storage unit): FNV-1a, hex.
    public static func studyID(_ r: StudyRecord) -> String { "s" + fnv(r.studyInstanceUID + "|" + r.storageUnit) }
    public static func endpointID(_ r: StudyRecord) -> String { "e" + fnv(r.retrieveURL) }

    /// A `searchset` Bundle: the studies as matches, their distinct endpoints as includes,
    /// and, when some region did not answer completely, one OperationOutcome entry (search
    /// mode `outcome`) with a warning per such region.
    public static func searchBundle(_ records: [StudyRecord], base: String, selfURL: String,
                                    incomplete: [(region: String, status: String)] = []) -> [UInt8] {
        var out = JSONWriter(capacity: 512 + 1_200 * records.count)
        out.beginObject()
        out.key("entry")
        out.beginArray()
        for r in records {
            out.element()
            entry(&out, url: "\(base)/ImagingStudy/\(studyID(r))", mode: "match") { imagingStudy(r, to: &$0) }
        }
        var seen: Set<String> = []
        for r in records {
            let id = endpointID(r)
            guard seen.insert(id).inserted else { continue }
            out.element()
            entry(&out, url: "\(base)/Endpoint/\(id)", mode: "include") { endpoint(r, to: &$0) }
        }
        if !incomplete.isEmpty {
            out.element()
            entry(&out, url: nil, mode: "outcome") { out in
                out.beginObject()
                out.key("issue")
                out.array(incomplete) { out, region in
                    out.beginObject()
                    out.field("code", region.status == "timeout" ? "timeout" : "incomplete")
                    out.field("diagnostics", "region \(region.region): \(region.status)")
                    out.field("severity", "warning")
                    out.endObject()
                }
                out.field("resourceType", "OperationOutcome")
                out.endObject()
            }
        }
        out.endArray()
        out.key("link")
        out.array([selfURL]) { out, url in
            out.beginObject()
            out.field("relation", "self")
            out.field("url", url)
            out.endObject()
        }
        out.field("resourceType", "Bundle")
        out.field("total", records.count)
        out.field("type", "searchset")
        out.endObject()
        return out.bytes
    }

    private static func entry(_ out: inout JSONWriter, url: String?, mode: String, resource: (inout JSONWriter) -> Void) {
        out.beginObject()
        out.field("fullUrl", url)
        out.key("resource")
        resource(&out)
        member(&out, "search") { $0.field("mode", mode) }
        out.endObject()
    }

    /// `"key":{…}`, the members written by `body`.
    private static func member(_ out: inout JSONWriter, _ key: StaticString, _ body: (inout JSONWriter) -> Void) {
        out.key(key)
        out.beginObject()
        body(&out)
        out.endObject()
    }

    static func imagingStudy(_ r: StudyRecord, to out: inout JSONWriter) {
        out.beginObject()
        out.field("description", r.studyDescription)
        out.key("endpoint")
        out.array(["Endpoint/" + endpointID(r)]) { out, reference in
            out.beginObject()
            out.field("reference", reference)
            out.endObject()
        }
        out.field("id", studyID(r))
        out.key("identifier")
        out.beginArray()
        out.element()
        out.beginObject()
        out.field("system", "urn:dicom:uid")
        out.field("value", "urn:oid:" + r.studyInstanceUID)
        out.endObject()
        if let accession = r.accessionNumber {
            out.element()
            out.beginObject()
            out.key("type")
            codings(&out, [("ACSN", "http://terminology.hl7.org/CodeSystem/v2-0203")], text: nil)
            out.field("value", accession)
            out.endObject()
        }
        out.endArray()
        out.key("modality")
        out.array(r.modalitiesInStudy) { out, code in coding(&out, code, dcmSystem) }
        out.field("numberOfInstances", r.numberOfStudyRelatedInstances)
        out.field("numberOfSeries", r.numberOfStudyRelatedSeries ?? r.series?.count)
        if let code = r.examItemCode {
            out.key("procedureCode")
            out.array([code]) { out, code in codings(&out, [(code, nil)], text: code) }
        }
        out.field("resourceType", "ImagingStudy")
        if let series = r.series, !series.isEmpty {
            out.key("series")
            out.array(series) { out, s in
                out.beginObject()
                if let part = s.bodyPartExamined { member(&out, "bodySite") { $0.field("display", part) } }
                out.field("description", s.seriesDescription)
                out.key("modality")
                coding(&out, s.modality, dcmSystem)
                out.field("number", s.seriesNumber)
                out.field("numberOfInstances", s.numberOfSeriesRelatedInstances)
                out.field("uid", s.seriesInstanceUID)
                out.endObject()
            }
        }
        out.field("started", started(r))
        out.field("status", "available")
        member(&out, "subject") { out in
            out.key("identifier")
            coding(&out, nil, tokenSystem, value: r.patientToken)
        }
        out.endObject()
    }

    static func endpoint(_ r: StudyRecord, to out: inout JSONWriter) {
        out.beginObject()
        out.field("address", r.retrieveURL)
        out.key("connectionType")
        coding(&out, "dicom-wado-rs", "http://terminology.hl7.org/CodeSystem/endpoint-connection-type")
        out.field("id", endpointID(r))
        out.key("payloadType")
        out.array(["DICOM"]) { out, code in
            codings(&out, [(code, "http://terminology.hl7.org/CodeSystem/endpoint-payload-type")], text: nil)
        }
        out.field("resourceType", "Endpoint")
        out.field("status", "active")
        out.endObject()
    }

    /// `{"code":…,"system":…}` (Coding), or `{"system":…,"value":…}` (Identifier) with `value`.
    private static func coding(_ out: inout JSONWriter, _ code: String?, _ system: String?, value: String? = nil) {
        out.beginObject()
        out.field("code", code)
        out.field("system", system)
        out.field("value", value)
        out.endObject()
    }

    /// A CodeableConcept: `{"coding":[…],"text":…}`.
    private static func codings(_ out: inout JSONWriter, _ items: [(code: String, system: String?)], text: String?) {
        out.beginObject()
        out.key("coding")
        out.array(items) { out, item in coding(&out, item.code, item.system) }
        out.field("text", text)
        out.endObject()
    }

    /// FHIR `started`: a date, or a date-time with seconds and offset when both the time
    /// and the timezone are known (dateTime needs the offset once it has a time).
    static func started(_ r: StudyRecord) -> String {
        let d = Array(r.studyDate)
        let date = "\(String(d[0..<4]))-\(String(d[4..<6]))-\(String(d[6..<8]))"
        guard let time = r.studyTime, let tz = r.timezoneOffset else { return date }
        let t = Array(time.prefix(6)) + Array(repeating: Character("0"), count: max(0, 6 - min(6, time.count)))
        let z = Array(tz)
        return "\(date)T\(String(t[0..<2])):\(String(t[2..<4])):\(String(t[4..<6]))\(z[0])\(String(z[1..<3])):\(String(z[3..<5]))"
    }

    static func fnv(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }
}
