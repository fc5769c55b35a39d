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
