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
        out.attribute("00080005", "CS", "ISO_IR 192")
        out.attribute("00080020", "DA", .studyDate, of: r)
        out.attribute("00080030", "TM", .studyTime, of: r)
        out.attribute("00080050", "SH", .accessionNumber, of: r)
        out.attribute("00080056", "CS", .instanceAvailability, of: r)
        out.modalities(of: r)
        if include.contains("00080080") { out.attribute("00080080", "LO", .institutionName, of: r) }
        out.attribute("00080090", "PN", nil)
        out.attribute("00080201", "SH", .timezoneOffset, of: r)
        if include.contains("00081030") { out.attribute("00081030", "LO", .studyDescription, of: r) }
        out.attribute("00081190", "UR", url: r, series: nil)
        out.attribute("00100010", "PN", nil)
        out.attribute("00100020", "LO", .patientToken, of: r)
        out.attribute("00100030", "DA", nil)
        out.attribute("00100040", "CS", .patientSex, of: r)
        out.attribute("0020000D", "UI", .studyInstanceUID, of: r)
        out.attribute("00200010", "SH", nil)
        out.attribute("00201206", "IS", number: r.number(.seriesInStudy))
        out.attribute("00201208", "IS", number: r.number(.instancesInStudy))
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
        out.attribute("00080005", "CS", "ISO_IR 192")
        out.attribute("00080060", "CS", s.modality)
        out.attribute("0008103E", "LO", s.seriesDescription)
        out.attribute("00081190", "UR", url: study, series: s.seriesInstanceUID)
        out.attribute("00180015", "CS", s.bodyPartExamined)
        out.attribute("0020000D", "UI", study.studyInstanceUID)
        out.attribute("0020000E", "UI", s.seriesInstanceUID)
        out.attribute("00200011", "IS", number: s.seriesNumber)
        out.attribute("00201209", "IS", number: s.numberOfSeriesRelatedInstances)
        out.endObject()
    }

}

/// DICOM JSON attributes: `"tag":{"vr":"VR","Value":[…]}`, or `{"vr":"VR"}` when empty.
/// The fixed parts go out as whole pieces (`raw`): a QIDO-RS answer of 100 studies is
/// 2 000 attributes, and writing each through key/beginObject/string calls was an eighth
/// of the node's CPU on that search (RESULTS.md).
private extension JSONWriter {
    /// No PN attribute ever has a value here (names are never stored), so none needs the
    /// `Alphabetic` component group.
    mutating func attribute(_ tag: StaticString, _ vr: StaticString, _ value: String?) {
        header(tag, vr)
        if let value, !value.isEmpty {
            raw(",\"Value\":[")
            string(value)
            raw("]")
        }
        raw("}")
    }

    mutating func attribute<Study: StudyFields>(_ tag: StaticString, _ vr: StaticString, _ field: StudyText, of r: Study) {
        header(tag, vr)
        r.withText(field) { value in
            if let value, !value.isEmpty {
                raw(",\"Value\":[")
                string(utf8: value)
                raw("]")
            }
        }
        raw("}")
    }

    /// ModalitiesInStudy (0008,0061): always a Value, empty when the study names none.
    mutating func modalities<Study: StudyFields>(of r: Study) {
        header("00080061", "CS")
        raw(",\"Value\":")
        beginArray()
        r.forEachModality { modality in
            element()
            string(utf8: modality)
        }
        endArray()
        raw("}")
    }

    mutating func attribute(_ tag: StaticString, _ vr: StaticString, number: Int?) {
        header(tag, vr)
        if let number {
            raw(",\"Value\":[")
            int(number)
            raw("]")
        }
        raw("}")
    }

    /// The study's (or one series') retrieve URL, `<retrieveURL>/studies/<uid>[/series/<uid>]`,
    /// written in pieces: joining it into a String first was 4 % of a 100-study search.
    mutating func attribute<Study: StudyFields>(_ tag: StaticString, _ vr: StaticString, url r: Study, series: String?) {
        header(tag, vr)
        raw(",\"Value\":[\"")
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
        raw("\"]}")
    }

    /// `"tag":{"vr":"VR"` after the comma the object needs; the attribute's writer closes it.
    private mutating func header(_ tag: StaticString, _ vr: StaticString) {
        element()
        raw("\"")
        raw(tag)
        raw("\":{\"vr\":\"")
        raw(vr)
        raw("\"")
    }
}
