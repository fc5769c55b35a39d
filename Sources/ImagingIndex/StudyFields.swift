/// The fields of one study that answers are written from, wherever the study is: a
/// `StudyRecord`, or a row the store's reader is still on. A study's DICOM JSON is
/// written once, against this, so an answer written from a row is the answer written from
/// the record that row makes; the store's contract test holds both to the same bytes.
///
/// Why not always a record: making 100 `StudyRecord`s (some 20 Strings each) and then
/// writing them out was a sixth of the CPU of a QIDO-RS search (RESULTS.md, session 26).
public protocol StudyFields {
    /// The field's UTF-8 bytes, valid only inside `body`; nil when the study has none.
    func withText<R>(_ field: StudyText, _ body: (UnsafeBufferPointer<UInt8>?) -> R) -> R
    func number(_ field: StudyNumber) -> Int?
    /// Each of the study's modalities, in their order.
    func forEachModality(_ body: (UnsafeBufferPointer<UInt8>) -> Void)
    /// The study's series, when it was sent with them.
    var series: [SeriesRecord]? { get }
}

/// A text field of a study, named as `StudyRecord` names it.
public enum StudyText: Sendable, CaseIterable {
    case patientToken, studyInstanceUID, accessionNumber, studyDate, studyTime, timezoneOffset
    case studyDescription, institutionName, patientSex, retrieveURL, instanceAvailability
    case bodyPartExamined, examItemCode, institutionCode, storageUnit, region, nhsaIndexCode
}

public enum StudyNumber: Sendable, CaseIterable {
    /// `numberOfStudyRelatedSeries`, or when that was not sent, how many series were.
    case seriesInStudy
    case instancesInStudy
    /// `numberOfStudyRelatedSeries` as sent, nil when it was not.
    case seriesSent
    case patientBirthYear
}

extension StudyRecord: StudyFields {
    public func withText<R>(_ field: StudyText, _ body: (UnsafeBufferPointer<UInt8>?) -> R) -> R {
        let value: String?
        switch field {
        case .patientToken: value = patientToken
        case .studyInstanceUID: value = studyInstanceUID
        case .accessionNumber: value = accessionNumber
        case .studyDate: value = studyDate
        case .studyTime: value = studyTime
        case .timezoneOffset: value = timezoneOffset
        case .studyDescription: value = studyDescription
        case .institutionName: value = institutionName
        case .patientSex: value = patientSex
        case .retrieveURL: value = retrieveURL
        case .instanceAvailability: value = instanceAvailability
        case .bodyPartExamined: value = bodyPartExamined
        case .examItemCode: value = examItemCode
        case .institutionCode: value = institutionCode
        case .storageUnit: value = storageUnit
        case .region: value = region
        case .nhsaIndexCode: value = nhsaIndexCode
        }
        guard var text = value else { return body(nil) }
        return text.withUTF8 { body($0) }
    }

    public func number(_ field: StudyNumber) -> Int? {
        switch field {
        case .seriesInStudy: return numberOfStudyRelatedSeries ?? series?.count
        case .instancesInStudy: return numberOfStudyRelatedInstances
        case .seriesSent: return numberOfStudyRelatedSeries
        case .patientBirthYear: return patientBirthYear
        }
    }

    public func forEachModality(_ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        for modality in modalitiesInStudy {
            var text = modality
            text.withUTF8(body)
        }
    }
}

extension StudyRecord {
    /// The record of a study's fields wherever they are (a row the store's reader is on):
    /// one mapping, so a record made from a row holds what an answer written from the row
    /// says. A required text that is absent becomes empty.
    public init(_ study: some StudyFields) {
        func text(_ field: StudyText) -> String? { study.withText(field) { $0.map { String(decoding: $0, as: UTF8.self) } } }
        var modalities: [String] = []
        study.forEachModality { modalities.append(String(decoding: $0, as: UTF8.self)) }
        self.init(patientToken: text(.patientToken) ?? "", studyInstanceUID: text(.studyInstanceUID) ?? "",
                  studyDate: text(.studyDate) ?? "", modalitiesInStudy: modalities, storageUnit: text(.storageUnit) ?? "",
                  retrieveURL: text(.retrieveURL) ?? "", region: text(.region) ?? "")
        studyTime = text(.studyTime)
        timezoneOffset = text(.timezoneOffset)
        accessionNumber = text(.accessionNumber)
        bodyPartExamined = text(.bodyPartExamined)
        studyDescription = text(.studyDescription)
        examItemCode = text(.examItemCode)
        numberOfStudyRelatedSeries = study.number(.seriesSent)
        numberOfStudyRelatedInstances = study.number(.instancesInStudy)
        patientSex = text(.patientSex)
        patientBirthYear = study.number(.patientBirthYear)
        institutionName = text(.institutionName)
        institutionCode = text(.institutionCode)
        instanceAvailability = text(.instanceAvailability)
        nhsaIndexCode = text(.nhsaIndexCode)
        series = study.series
    }
}
