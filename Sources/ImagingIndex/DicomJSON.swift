import Foundation
import JSONText

/// Study and series records as the DICOM JSON model (PS3.18 Annex F) for QIDO-RS.
/// PatientID carries the token; PatientName and BirthDate are never stored, so they go
/// out empty, as the standard allows for required-but-unknown attributes.
public enum DicomJSON {
    /// Optional study attributes a caller may ask for with `includefield`.
    public static let optionalStudyFields: [String: String] = [
        "StudyDescription": "00081030", "00081030": "00081030",
        "InstitutionName": "00080080", "00080080": "00080080",
    ]

    /// Attributes of one study, keys in ascending tag order.
    public static func study(_ r: StudyRecord, include: Set<String>) -> String {
        var o = Object()
        o.add("00080005", "CS", string: "ISO_IR 192")
        o.add("00080020", "DA", string: r.studyDate)
        o.add("00080030", "TM", string: r.studyTime)
        o.add("00080050", "SH", string: r.accessionNumber)
        o.add("00080056", "CS", string: r.instanceAvailability)
        o.add("00080061", "CS", strings: r.modalitiesInStudy)
        if include.contains("00080080") { o.add("00080080", "LO", string: r.institutionName) }
        o.add("00080090", "PN", string: nil)
        o.add("00080201", "SH", string: r.timezoneOffset)
        if include.contains("00081030") { o.add("00081030", "LO", string: r.studyDescription) }
        o.add("00081190", "UR", string: studyURL(r))
        o.add("00100010", "PN", string: nil)
        o.add("00100020", "LO", string: r.patientToken)
        o.add("00100030", "DA", string: nil)
        o.add("00100040", "CS", string: r.patientSex)
        o.add("0020000D", "UI", string: r.studyInstanceUID)
        o.add("00200010", "SH", string: nil)
        o.add("00201206", "IS", number: r.numberOfStudyRelatedSeries ?? r.series?.count)
        o.add("00201208", "IS", number: r.numberOfStudyRelatedInstances)
        return o.text
    }

    /// Attributes of one series of `study`.
    public static func series(_ s: SeriesRecord, of study: StudyRecord) -> String {
        var o = Object()
        o.add("00080005", "CS", string: "ISO_IR 192")
        o.add("00080060", "CS", string: s.modality)
        o.add("0008103E", "LO", string: s.seriesDescription)
        o.add("00081190", "UR", string: studyURL(study) + "/series/" + s.seriesInstanceUID)
        o.add("00180015", "CS", string: s.bodyPartExamined)
        o.add("0020000D", "UI", string: study.studyInstanceUID)
        o.add("0020000E", "UI", string: s.seriesInstanceUID)
        o.add("00200011", "IS", number: s.seriesNumber)
        o.add("00201209", "IS", number: s.numberOfSeriesRelatedInstances)
        return o.text
    }

    static func studyURL(_ r: StudyRecord) -> String {
        (r.retrieveURL.hasSuffix("/") ? String(r.retrieveURL.dropLast()) : r.retrieveURL) + "/studies/" + r.studyInstanceUID
    }

    /// One DICOM JSON object, written as text: QIDO answers are built per request and
    /// JSONSerialization would cost more than the query.
    struct Object {
        private var parts: [String] = []

        mutating func add(_ tag: String, _ vr: String, string: String?) {
            guard let string, !string.isEmpty else { return parts.append("\"\(tag)\":{\"vr\":\"\(vr)\"}") }
            let value = vr == "PN" ? "{\"Alphabetic\":\(jsonString(string))}" : jsonString(string)
            parts.append("\"\(tag)\":{\"vr\":\"\(vr)\",\"Value\":[\(value)]}")
        }

        mutating func add(_ tag: String, _ vr: String, strings: [String]) {
            parts.append("\"\(tag)\":{\"vr\":\"\(vr)\",\"Value\":[\(strings.map(jsonString).joined(separator: ","))]}")
        }

        mutating func add(_ tag: String, _ vr: String, number: Int?) {
            guard let number else { return parts.append("\"\(tag)\":{\"vr\":\"\(vr)\"}") }
            parts.append("\"\(tag)\":{\"vr\":\"\(vr)\",\"Value\":[\(number)]}")
        }

        var text: String { "{" + parts.joined(separator: ",") + "}" }
    }
}
