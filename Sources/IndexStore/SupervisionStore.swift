import AuditLog
import ImagingIndex

/// Prior-exam checks and the regulator's view of them. The contract every implementation
/// must pass is `SupervisionStoreContract` in Tests/IndexStoreTests. In short:
/// - `record` returns only once the check (and its audit event, when given) is durable.
/// - `supervision` counts, per institution and month: studies indexed (by storage unit and
///   study date), checks made (by the checking institution and the day of the check),
///   checks whose verdict was repeat-candidate, and repeat studies — studies of the same
///   patient and modality (and body part or exam item, as the check named them) indexed
///   after a repeat-candidate check and dated inside its window. Each count comes with the
///   number of distinct patients behind it, for small-cell suppression by the caller.
public protocol SupervisionStore: Sendable {
    func record(_ check: PriorCheck, audit: AuditEvent?) async throws(StoreError)
    /// `query`, then the check that `check` makes of its results and the audit event that
    /// `audit` makes of them (when given), both in one transaction, durable before this
    /// returns: a check answered from this node's store alone costs one commit.
    func query(_ query: StudyQuery, audit: (@Sendable ([StudyRecord]) -> AuditEvent)?,
               check: @escaping @Sendable ([StudyRecord]) -> PriorCheck) async throws(StoreError) -> [StudyRecord]
    func supervision(_ query: SupervisionQuery) async throws(StoreError) -> [SupervisionRow]
}

/// One prior-exam check as the supervision statistics need it: a token, never an identifier.
public struct PriorCheck: Sendable, Equatable {
    /// Milliseconds since 1970.
    public var checkedAt: Int64
    /// The day of the check and the last day of its window, YYYYMMDD.
    public var day: String
    public var untilDay: String
    /// The checking institution's organization code (from its certificate).
    public var institution: String
    public var region: String
    public var patientToken: String
    public var modality: String
    public var bodyPart: String?
    public var examItem: String?
    public var windowDays: Int
    public var repeatCandidate: Bool
    public var priors: Int

    public init(checkedAt: Int64, day: String, untilDay: String, institution: String, region: String, patientToken: String,
                modality: String, bodyPart: String?, examItem: String?, windowDays: Int, repeatCandidate: Bool, priors: Int) {
        self.checkedAt = checkedAt
        self.day = day
        self.untilDay = untilDay
        self.institution = institution
        self.region = region
        self.patientToken = patientToken
        self.modality = modality
        self.bodyPart = bodyPart
        self.examItem = examItem
        self.windowDays = windowDays
        self.repeatCandidate = repeatCandidate
        self.priors = priors
    }
}

/// Months from `fromMonth` to `toMonth` (YYYYMM, inclusive); `region` narrows to one region.
public struct SupervisionQuery: Sendable, Equatable {
    public var fromMonth: String
    public var toMonth: String
    public var region: String?

    public init(fromMonth: String, toMonth: String, region: String? = nil) {
        self.fromMonth = fromMonth
        self.toMonth = toMonth
        self.region = region
    }
}

/// A count and how many distinct patients it covers.
public struct SupervisionCount: Sendable, Equatable {
    public var count: Int
    public var patients: Int

    public init(_ count: Int, patients: Int) {
        self.count = count
        self.patients = patients
    }

    public static let zero = SupervisionCount(0, patients: 0)
}

public struct SupervisionRow: Sendable, Equatable {
    public var institution: String
    /// YYYYMM.
    public var month: String
    public var studiesIndexed = SupervisionCount.zero
    public var priorChecks = SupervisionCount.zero
    public var repeatCandidates = SupervisionCount.zero
    public var repeatStudies = SupervisionCount.zero

    public init(institution: String, month: String) {
        self.institution = institution
        self.month = month
    }
}
