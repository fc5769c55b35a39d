/// One study in the index (DOMAIN.md §3). It holds no patient identifier: the patient is
/// a token, the person part of the NHSA index code is that token, and birth is a year.
/// Identity is (studyInstanceUID, storageUnit): uploading it again updates it.
public struct StudyRecord: Codable, Sendable, Equatable {
    public var patientToken: String
    public var studyInstanceUID: String
    public var accessionNumber: String?
    /// DICOM DA, YYYYMMDD.
    public var studyDate: String
    /// DICOM TM.
    public var studyTime: String?
    /// +HHMM / -HHMM (0008,0201).
    public var timezoneOffset: String?
    public var modalitiesInStudy: [String]
    public var bodyPartExamined: String?
    public var studyDescription: String?
    /// WS/T 364.8 examination item code (0008,1032).
    public var examItemCode: String?
    public var numberOfStudyRelatedSeries: Int?
    public var numberOfStudyRelatedInstances: Int?
    /// M, F or O.
    public var patientSex: String?
    public var patientBirthYear: Int?
    public var institutionName: String?
    /// The institution's unified social credit code.
    public var institutionCode: String?
    /// Unified social credit code of the unit that holds the images.
    public var storageUnit: String
    /// DICOMweb base URL at the storage unit (https).
    public var retrieveURL: String
    /// ONLINE, NEARLINE, OFFLINE or UNAVAILABLE.
    public var instanceAvailability: String?
    /// Six-digit administrative division code.
    public var region: String
    /// `<patientToken>-YYYYMMDDhhmm-<9>-<13>-<storageUnit>`.
    public var nhsaIndexCode: String?
    /// The study's series, when the uploader sends them (QIDO-RS series level).
    public var series: [SeriesRecord]?

    public init(patientToken: String, studyInstanceUID: String, studyDate: String, modalitiesInStudy: [String],
                storageUnit: String, retrieveURL: String, region: String) {
        self.patientToken = patientToken
        self.studyInstanceUID = studyInstanceUID
        self.studyDate = studyDate
        self.modalitiesInStudy = modalitiesInStudy
        self.storageUnit = storageUnit
        self.retrieveURL = retrieveURL
        self.region = region
    }
}

/// One series of a study, as QIDO-RS answers at series level.
public struct SeriesRecord: Codable, Sendable, Equatable {
    public var seriesInstanceUID: String
    public var modality: String
    public var seriesNumber: Int?
    public var seriesDescription: String?
    public var bodyPartExamined: String?
    public var numberOfSeriesRelatedInstances: Int?

    public init(seriesInstanceUID: String, modality: String) {
        self.seriesInstanceUID = seriesInstanceUID
        self.modality = modality
    }
}

/// Every reason one record was refused, field by field.
public struct RecordRejection: Error, Sendable, Equatable {
    public let errors: [FieldError]

    public init(errors: [FieldError]) {
        self.errors = errors
    }

    /// The codes, for callers that only need to know which rules failed.
    public var codes: [String] { errors.map(\.code) }
}

/// Why one field of one record was refused. `code` is stable; `message` never repeats
/// the value (it may be an identifier).
public struct FieldError: Error, Sendable, Equatable, Codable {
    public let field: String
    public let code: String
    public let message: String

    public init(_ field: String, _ code: String, _ message: String) {
        self.field = field
        self.code = code
        self.message = message
    }
}
