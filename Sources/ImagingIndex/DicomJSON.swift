import Foundation
import JSONText

/// Study and series records as the DICOM JSON model (PS3.18 Annex F) for QIDO-RS.
/// PatientID carries the token; PatientName and BirthDate are never stored, so they go
/// out empty, as the standard allows for required-but-unknown attributes. Written straight
/// into the answer's bytes: a QIDO answer is up to hundreds of studies built per request.
public enum DicomJSON {
    /// Optional study attributes a caller may ask for with `includefield`.
    public static let optionalStudyFields: [String: String] = [
        "StudyDescription": "00081030", "00081030": "00081030",
        "InstitutionName": "00080080", "00080080": "00080080",
    ]

    /// Attributes of one study, keys in ascending tag order.
    public static func study<Study: StudyFields>(_ r: Study, include: Set<String>, to out: inout JSONWriter) {
        out.beginObject()
        out.constant(#""00080005":{"vr":"CS","Value":["ISO_IR 192"]}"#)
        out.attribute(#""00080020":{"vr":"DA""#, .studyDate, of: r)
        out.attribute(#""00080030":{"vr":"TM""#, .studyTime, of: r)
        out.attribute(#""00080050":{"vr":"SH""#, .accessionNumber, of: r)
        out.attribute(#""00080056":{"vr":"CS""#, .instanceAvailability, of: r)
        out.modalities(of: r)
        if include.contains("00080080") { out.attribute(#""00080080":{"vr":"LO""#, .institutionName, of: r) }
        out.constant(#""00080090":{"vr":"PN"}"#)
        out.attribute(#""00080201":{"vr":"SH""#, .timezoneOffset, of: r)
        if include.contains("00081030") { out.attribute(#""00081030":{"vr":"LO""#, .studyDescription, of: r) }
        out.url(of: r, series: nil)
        out.constant(#""00100010":{"vr":"PN"}"#)
        out.attribute(#""00100020":{"vr":"LO""#, .patientToken, of: r)
        out.constant(#""00100030":{"vr":"DA"}"#)
        out.attribute(#""00100040":{"vr":"CS""#, .patientSex, of: r)
        out.attribute(#""0020000D":{"vr":"UI""#, .studyInstanceUID, of: r)
        out.constant(#""00200010":{"vr":"SH"}"#)
        out.attribute(#""00201206":{"vr":"IS""#, number: r.number(.seriesInStudy))
        out.attribute(#""00201208":{"vr":"IS""#, number: r.number(.instancesInStudy))
        out.endObject()
    }

    /// One study as a JSON object on its own.
    public static func study(_ r: StudyRecord, include: Set<String>) -> String {
        var out = JSONWriter()
        study(r, include: include, to: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// Attributes of one series of `study`.
    public static func series(_ s: SeriesRecord, of study: StudyRecord, to out: inout JSONWriter) {
        out.beginObject()
        out.constant(#""00080005":{"vr":"CS","Value":["ISO_IR 192"]}"#)
        out.attribute(#""00080060":{"vr":"CS""#, s.modality)
        out.attribute(#""0008103E":{"vr":"LO""#, s.seriesDescription)
        out.url(of: study, series: s.seriesInstanceUID)
        out.attribute(#""00180015":{"vr":"CS""#, s.bodyPartExamined)
        out.attribute(#""0020000D":{"vr":"UI""#, study.studyInstanceUID)
        out.attribute(#""0020000E":{"vr":"UI""#, s.seriesInstanceUID)
        out.attribute(#""00200011":{"vr":"IS""#, number: s.seriesNumber)
        out.attribute(#""00201209":{"vr":"IS""#, number: s.numberOfSeriesRelatedInstances)
        out.endObject()
    }
}

/// DICOM JSON attributes: `"tag":{"vr":"VR","Value":[…]}`, or `{"vr":"VR"}` when empty.
/// Each attribute's head (`"tag":{"vr":"VR"`) is one literal and goes out in one copy, and
/// an attribute that is always the same goes out whole: a QIDO-RS answer of 100 studies is
/// 2 000 attributes, and writing each through key/beginObject/string calls was an eighth
/// of the node's CPU on that search, the head in five pieces still a twentieth (RESULTS.md).
/// What must stay true: each head is `"tag":{"vr":"VR"` exactly, and each constant a whole
/// attribute, since nothing here checks them. No PN attribute ever has a value (names are
/// never stored), so none needs the `Alphabetic` component group.
private extension JSONWriter {
    mutating func constant(_ attribute: StaticString) {
        element()
        raw(attribute)
    }

    mutating func attribute(_ head: StaticString, _ value: String?) {
        guard var value else { return attribute(head, utf8: nil) }
        value.withUTF8 { attribute(head, utf8: $0) }
    }

    mutating func attribute<Study: StudyFields>(_ head: StaticString, _ field: StudyText, of r: Study) {
        r.withText(field) { attribute(head, utf8: $0) }
    }

    /// A text attribute from its UTF-8 bytes: no Value when absent or empty.
    private mutating func attribute(_ head: StaticString, utf8 value: UnsafeBufferPointer<UInt8>?) {
        element()
        raw(head)
        if let value, !value.isEmpty {
            raw(#","Value":[""#)
            unquoted(utf8: value)
            raw(#""]"#)
        }
        raw("}")
    }

    mutating func attribute(_ head: StaticString, number: Int?) {
        element()
        raw(head)
        if let number {
            raw(#","Value":["#)
            int(number)
            raw("]")
        }
        raw("}")
    }

    /// ModalitiesInStudy (0008,0061): always a Value, empty when the study names none.
    mutating func modalities<Study: StudyFields>(of r: Study) {
        element()
        raw(#""00080061":{"vr":"CS","Value":"#)
        beginArray()
        r.forEachModality { modality in
            element()
            string(utf8: modality)
        }
        endArray()
        raw("}")
    }

    /// RetrieveURL (0008,1190) of the study or one series, `<retrieveURL>/studies/<uid>[/series/<uid>]`,
    /// written in pieces: joining it into a String first was 4 % of a 100-study search.
    mutating func url<Study: StudyFields>(of r: Study, series: String?) {
        element()
        raw(#""00081190":{"vr":"UR","Value":[""#)
        r.withText(.retrieveURL) { url in
            guard let url else { return }
            unquoted(utf8: url.last == UInt8(ascii: "/") ? UnsafeBufferPointer(rebasing: url.dropLast()) : url)
        }
        raw("/studies/")
        r.withText(.studyInstanceUID) { uid in if let uid { unquoted(utf8: uid) } }
        if let series {
            raw("/series/")
            unquoted(series)
        }
        raw(#""]}"#)
    }
}
