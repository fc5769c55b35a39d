import JSONText

/// A record as the native API's JSON, written directly: lookups answer with many
/// records and Foundation's JSONEncoder costs more than the query that found them.
/// Keys and shape are those of `StudyRecord`'s Codable form (absent optionals omitted).
extension StudyRecord {
    public var jsonText: String {
        var o = JSONObjectText()
        o.add("patientToken", patientToken)
        o.add("studyInstanceUID", studyInstanceUID)
        o.add("accessionNumber", accessionNumber)
        o.add("studyDate", studyDate)
        o.add("studyTime", studyTime)
        o.add("timezoneOffset", timezoneOffset)
        o.raw("modalitiesInStudy", "[" + modalitiesInStudy.map(jsonString).joined(separator: ",") + "]")
        o.add("bodyPartExamined", bodyPartExamined)
        o.add("studyDescription", studyDescription)
        o.add("examItemCode", examItemCode)
        o.add("numberOfStudyRelatedSeries", numberOfStudyRelatedSeries)
        o.add("numberOfStudyRelatedInstances", numberOfStudyRelatedInstances)
        o.add("patientSex", patientSex)
        o.add("patientBirthYear", patientBirthYear)
        o.add("institutionName", institutionName)
        o.add("institutionCode", institutionCode)
        o.add("storageUnit", storageUnit)
        o.add("retrieveURL", retrieveURL)
        o.add("instanceAvailability", instanceAvailability)
        o.add("region", region)
        o.add("nhsaIndexCode", nhsaIndexCode)
        if let series {
            o.raw("series", "[" + series.map(\.jsonText).joined(separator: ",") + "]")
        }
        return o.text
    }
}

extension SeriesRecord {
    var jsonText: String {
        var o = JSONObjectText()
        o.add("seriesInstanceUID", seriesInstanceUID)
        o.add("modality", modality)
        o.add("seriesNumber", seriesNumber)
        o.add("seriesDescription", seriesDescription)
        o.add("bodyPartExamined", bodyPartExamined)
        o.add("numberOfSeriesRelatedInstances", numberOfSeriesRelatedInstances)
        return o.text
    }
}

struct JSONObjectText {
    private var parts: [String] = []

    mutating func add(_ key: String, _ value: String?) {
        if let value { parts.append("\"\(key)\":" + jsonString(value)) }
    }

    mutating func add(_ key: String, _ value: Int?) {
        if let value { parts.append("\"\(key)\":\(value)") }
    }

    mutating func raw(_ key: String, _ json: String) {
        parts.append("\"\(key)\":" + json)
    }

    var text: String { "{" + parts.joined(separator: ",") + "}" }
}
