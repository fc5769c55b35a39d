import ImagingIndex

/// The columns of `SQLiteSchema.columns`, by their position in it: what must stay true is
/// that the two lists name the same columns in the same order.
enum StudyColumn: Int32 {
    case studyUID = 0, storageUnit, patientToken, studyDate, studyTime, timezoneOffset, accession, modalities
    case bodyPart, description, examItemCode, seriesCount, instanceCount, patientSex, birthYear
    case institutionName, institutionCode, retrieveURL, availability, region, nhsaIndexCode, seriesJSON
}

/// A study row that a reader's statement is on, read in place: its text is SQLite's own
/// bytes, valid until the statement steps on, so a `StudyRow` must not outlive the step
/// that made it (it is handed to a writer and dropped before the next `step`).
///
/// The text is valid UTF-8 because every row was written from Swift Strings.
struct StudyRow: StudyFields {
    private let s: Statement

    init(_ s: Statement) { self.s = s }

    func string(_ column: StudyColumn) -> String { s.string(column.rawValue) ?? "" }

    func withText<R>(_ field: StudyText, _ body: (UnsafeBufferPointer<UInt8>?) -> R) -> R {
        body(s.text(Self.column(field).rawValue))
    }

    func number(_ field: StudyNumber) -> Int? {
        switch field {
        case .seriesInStudy:
            return s.int(StudyColumn.seriesCount.rawValue)
                ?? series?.count
        case .instancesInStudy:
            return s.int(StudyColumn.instanceCount.rawValue)
        case .seriesSent:
            return s.int(StudyColumn.seriesCount.rawValue)
        case .patientBirthYear:
            return s.int(StudyColumn.birthYear.rawValue)
        }
    }

    var series: [SeriesRecord]? { s.string(StudyColumn.seriesJSON.rawValue).flatMap(SeriesRecord.fromStoredJSON) }

    func forEachModality(_ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        guard let list = s.text(StudyColumn.modalities.rawValue) else { return }
        var start = 0
        for end in list.indices where list[end] == UInt8(ascii: "\\") {
            if end > start { body(UnsafeBufferPointer(rebasing: list[start..<end])) }
            start = end + 1
        }
        if list.count > start { body(UnsafeBufferPointer(rebasing: list[start...])) }
    }

    private static func column(_ field: StudyText) -> StudyColumn {
        switch field {
        case .patientToken: return .patientToken
        case .studyInstanceUID: return .studyUID
        case .accessionNumber: return .accession
        case .studyDate: return .studyDate
        case .studyTime: return .studyTime
        case .timezoneOffset: return .timezoneOffset
        case .studyDescription: return .description
        case .institutionName: return .institutionName
        case .patientSex: return .patientSex
        case .retrieveURL: return .retrieveURL
        case .instanceAvailability: return .availability
        case .bodyPartExamined: return .bodyPart
        case .examItemCode: return .examItemCode
        case .institutionCode: return .institutionCode
        case .storageUnit: return .storageUnit
        case .region: return .region
        case .nhsaIndexCode: return .nhsaIndexCode
        }
    }
}

extension SQLiteQuery {
    /// The study of the row `s` is on, its columns from column 0.
    static func record(_ s: Statement) -> StudyRecord { StudyRecord(StudyRow(s)) }
}
