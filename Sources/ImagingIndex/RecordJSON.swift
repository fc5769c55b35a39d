import JSONText

/// A record as the native API's JSON, written directly: lookups answer with many
/// records and Foundation's JSONEncoder costs more than the query that found them.
/// Keys and shape are those of `StudyRecord`'s Codable form (absent optionals omitted).
extension StudyRecord {
    public var jsonText: String {
        var out = JSONWriter()
        write(to: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// Writes the record as one JSON object (an array element when `out` is in an array).
    public func write(to out: inout JSONWriter) { writeNative(to: &out) }
}

extension StudyFields {
    /// The study as the native API's JSON object, from its fields wherever they are: a
    /// token lookup writes it from the rows its reader is on, which made and dropped a
    /// `StudyRecord` (some twenty Strings) per study before (RESULTS.md, index, session 32).
    public func writeNative(to out: inout JSONWriter) {
        out.beginObject()
        out.text("patientToken", .patientToken, of: self, required: true)
        out.text("studyInstanceUID", .studyInstanceUID, of: self, required: true)
        out.text("accessionNumber", .accessionNumber, of: self)
        out.text("studyDate", .studyDate, of: self, required: true)
        out.text("studyTime", .studyTime, of: self)
        out.text("timezoneOffset", .timezoneOffset, of: self)
        out.key("modalitiesInStudy")
        out.beginArray()
        forEachModality { modality in
            out.element()
            out.string(utf8: modality)
        }
        out.endArray()
        out.text("bodyPartExamined", .bodyPartExamined, of: self)
        out.text("studyDescription", .studyDescription, of: self)
        out.text("examItemCode", .examItemCode, of: self)
        out.field("numberOfStudyRelatedSeries", number(.seriesSent))
        out.field("numberOfStudyRelatedInstances", number(.instancesInStudy))
        out.text("patientSex", .patientSex, of: self)
        out.field("patientBirthYear", number(.patientBirthYear))
        out.text("institutionName", .institutionName, of: self)
        out.text("institutionCode", .institutionCode, of: self)
        out.text("storageUnit", .storageUnit, of: self, required: true)
        out.text("retrieveURL", .retrieveURL, of: self, required: true)
        out.text("instanceAvailability", .instanceAvailability, of: self)
        out.text("region", .region, of: self, required: true)
        out.text("nhsaIndexCode", .nhsaIndexCode, of: self)
        if let series {
            out.key("series")
            out.array(series) { $1.write(to: &$0) }
        }
        out.endObject()
    }
}

private extension JSONWriter {
    /// A text member from the study's bytes: left out when absent, unless `required`
    /// (then empty, as a record made from a row with nothing there holds it).
    mutating func text<Study: StudyFields>(_ key: StaticString, _ field: StudyText, of study: Study, required: Bool = false) {
        study.withText(field) { value in
            guard value != nil || required else { return }
            self.key(key)
            if let value { string(utf8: value) } else { raw(#""""#) }
        }
    }
}

extension SeriesRecord {
    /// A study's series as the store keeps them: the JSON array of their native form.
    /// Written and read here rather than by Foundation's coders, which built an encoder or
    /// a decoder and its containers for every row of every lookup that returned one.
    public static func storedJSON(_ series: [SeriesRecord]) -> String {
        var out = JSONWriter(capacity: 128 * series.count + 2)
        out.array(series) { $1.write(to: &$0) }
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// The series from `storedJSON`'s text (or JSONEncoder's, which rows written before it
    /// hold: the keys are the same); nil when the text is not such an array.
    public static func fromStoredJSON(_ text: String) -> [SeriesRecord]? {
        guard case .array(let items)? = JSONParser.parse(Array(text.utf8)) else { return nil }
        var out: [SeriesRecord] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard case .object(let o) = item, case .string(let uid)? = o["seriesInstanceUID"],
                  case .string(let modality)? = o["modality"] else { return nil }
            var s = SeriesRecord(seriesInstanceUID: uid, modality: modality)
            s.seriesNumber = o["seriesNumber"]?.integer
            s.seriesDescription = o["seriesDescription"]?.text
            s.bodyPartExamined = o["bodyPartExamined"]?.text
            s.numberOfSeriesRelatedInstances = o["numberOfSeriesRelatedInstances"]?.integer
            out.append(s)
        }
        return out
    }

    func write(to out: inout JSONWriter) {
        out.beginObject()
        out.field("seriesInstanceUID", seriesInstanceUID)
        out.field("modality", modality)
        out.field("seriesNumber", seriesNumber)
        out.field("seriesDescription", seriesDescription)
        out.field("bodyPartExamined", bodyPartExamined)
        out.field("numberOfSeriesRelatedInstances", numberOfSeriesRelatedInstances)
        out.endObject()
    }
}

private extension JSONValue {
    var text: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var integer: Int? {
        if case .number(let n) = self { return Int(exactly: n) }
        return nil
    }
}
