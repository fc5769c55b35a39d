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
    public func write(to out: inout JSONWriter) {
        out.beginObject()
        out.field("patientToken", patientToken)
        out.field("studyInstanceUID", studyInstanceUID)
        out.field("accessionNumber", accessionNumber)
        out.field("studyDate", studyDate)
        out.field("studyTime", studyTime)
        out.field("timezoneOffset", timezoneOffset)
        out.key("modalitiesInStudy")
        out.array(modalitiesInStudy) { $0.string($1) }
        out.field("bodyPartExamined", bodyPartExamined)
        out.field("studyDescription", studyDescription)
        out.field("examItemCode", examItemCode)
        out.field("numberOfStudyRelatedSeries", numberOfStudyRelatedSeries)
        out.field("numberOfStudyRelatedInstances", numberOfStudyRelatedInstances)
        out.field("patientSex", patientSex)
        out.field("patientBirthYear", patientBirthYear)
        out.field("institutionName", institutionName)
        out.field("institutionCode", institutionCode)
        out.field("storageUnit", storageUnit)
        out.field("retrieveURL", retrieveURL)
        out.field("instanceAvailability", instanceAvailability)
        out.field("region", region)
        out.field("nhsaIndexCode", nhsaIndexCode)
        if let series {
            out.key("series")
            out.array(series) { $1.write(to: &$0) }
        }
        out.endObject()
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
