import Foundation

/// Study records as FHIR R4 ImagingStudy + Endpoint resources (DOMAIN.md §5).
public enum FHIRMapping {
    /// The identifier system of patient tokens (Patient.identifier in subject references).
    public static let tokenSystem = "urn:imaging-gateway:patient-token"
    public static let dcmSystem = "http://dicom.nema.org/resources/ontology/DCM"
    static let dcm = dcmSystem

    /// A stable resource id for a study identity (UID, storage unit): FNV-1a, hex.
    public static func studyID(_ r: StudyRecord) -> String { "s" + fnv(r.studyInstanceUID + "|" + r.storageUnit) }
    public static func endpointID(_ r: StudyRecord) -> String { "e" + fnv(r.retrieveURL) }

    public static func imagingStudy(_ r: StudyRecord) -> [String: Any] {
        var identifiers: [[String: Any]] = [["system": "urn:dicom:uid", "value": "urn:oid:" + r.studyInstanceUID]]
        if let acc = r.accessionNumber {
            identifiers.append(["type": ["coding": [["system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"]]],
                                "value": acc])
        }
        var study: [String: Any] = [
            "resourceType": "ImagingStudy", "id": studyID(r), "identifier": identifiers, "status": "available",
            "modality": r.modalitiesInStudy.map { ["system": dcm, "code": $0] },
            "subject": ["identifier": ["system": tokenSystem, "value": r.patientToken]],
            "started": started(r),
            "endpoint": [["reference": "Endpoint/" + endpointID(r)]],
        ]
        if let n = r.numberOfStudyRelatedSeries ?? r.series?.count { study["numberOfSeries"] = n }
        if let n = r.numberOfStudyRelatedInstances { study["numberOfInstances"] = n }
        if let d = r.studyDescription { study["description"] = d }
        if let code = r.examItemCode { study["procedureCode"] = [["coding": [["code": code]], "text": code]] }
        if let series = r.series, !series.isEmpty {
            study["series"] = series.map { s -> [String: Any] in
                var o: [String: Any] = ["uid": s.seriesInstanceUID, "modality": ["system": dcm, "code": s.modality]]
                if let n = s.seriesNumber { o["number"] = n }
                if let d = s.seriesDescription { o["description"] = d }
                if let n = s.numberOfSeriesRelatedInstances { o["numberOfInstances"] = n }
                if let b = s.bodyPartExamined { o["bodySite"] = ["display": b] }
                return o
            }
        }
        return study
    }

    public static func endpoint(_ r: StudyRecord) -> [String: Any] {
        [
            "resourceType": "Endpoint", "id": endpointID(r), "status": "active",
            "connectionType": ["system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "code": "dicom-wado-rs"],
            "payloadType": [["coding": [["system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type", "code": "DICOM"]]]],
            "address": r.retrieveURL,
        ]
    }

    /// A `searchset` Bundle: the studies as matches, their distinct endpoints as includes.
    public static func searchBundle(_ records: [StudyRecord], base: String, selfURL: String) -> [String: Any] {
        var entries: [[String: Any]] = records.map {
            ["fullUrl": "\(base)/ImagingStudy/\(studyID($0))", "resource": imagingStudy($0), "search": ["mode": "match"]]
        }
        var seen: Set<String> = []
        for r in records where seen.insert(endpointID(r)).inserted {
            entries.append(["fullUrl": "\(base)/Endpoint/\(endpointID(r))", "resource": endpoint(r), "search": ["mode": "include"]])
        }
        return ["resourceType": "Bundle", "type": "searchset", "total": records.count,
                "link": [["relation": "self", "url": selfURL]], "entry": entries]
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
