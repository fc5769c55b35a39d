/// A read request: a UPS workitem (DICOM PS3.4 Annex CC) that asks for a study in the
/// index to be read, with this gateway's additions: an AI stage before the readers, a
/// lease on every claim, attempts, and a dead-letter state. Times are milliseconds since
/// the Unix epoch, so the store and the queue compare integers.
public struct Workitem: Sendable, Equatable {
    /// UPS Priority (0074,1200). STAT is accepted on input as HIGH.
    public enum Priority: Int, Sendable, Comparable, CaseIterable {
        case high = 0, medium = 1, low = 2

        public init?(dicom: String) {
            switch dicom.uppercased() {
            case "HIGH", "STAT": self = .high
            case "MEDIUM": self = .medium
            case "LOW": self = .low
            default: return nil
            }
        }

        public var dicom: String { ["HIGH", "MEDIUM", "LOW"][rawValue] }

        public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    }

    /// Where the item is in its life. UPS sees four states (`upsState`); the gateway
    /// keeps the AI stage and the dead letters apart inside SCHEDULED and CANCELED.
    public enum Stage: String, Sendable, CaseIterable {
        case awaitingAI = "awaiting-ai"
        case runningAI = "running-ai"
        case ready
        case inProgress = "in-progress"
        case completed
        case canceled
        case deadLetter = "dead-letter"

        public var upsState: String {
            switch self {
            case .awaitingAI, .runningAI, .ready: return "SCHEDULED"
            case .inProgress: return "IN PROGRESS"
            case .completed: return "COMPLETED"
            case .canceled, .deadLetter: return "CANCELED"
            }
        }

        /// Completed, canceled and dead-lettered items never change again (a re-drive makes
        /// a new item).
        public var isFinal: Bool { self == .completed || self == .canceled || self == .deadLetter }

        /// The stages a claim holds, with a lease.
        public var isHeld: Bool { self == .runningAI || self == .inProgress }
    }

    public var uid: String
    /// The requesting clinic's organization code (its certificate's).
    public var clinic: String
    public var studyInstanceUID: String
    public var storageUnit: String
    public var retrieveURL: String?
    /// The region whose index holds the study, when it was found through federation.
    public var region: String?
    /// The study's modalities and body part, as the index had them: the AI stage's input.
    public var modalities: [String]
    public var bodyPart: String?
    public var priority: Priority
    /// The AI stage's triage; readers' order uses the more urgent of it and `priority`.
    public var triagePriority: Priority?
    /// Worklist label (0074,1202): a subspecialty or reading group; "" for none.
    public var label: String
    public var expectedCompletion: Int64
    public var createdAt: Int64
    public var stage: Stage
    /// The SAN URI of the current holder while held.
    public var holder: String?
    public var transactionUID: String?
    public var leaseDeadline: Int64?
    /// Reader leases that expired.
    public var attempts: Int
    /// AI runs that failed or whose lease expired.
    public var aiAttempts: Int
    /// The AI stage's result as a JSON object text.
    public var aiResult: String?
    /// The reader's report reference (a retrieve URL) when completed.
    public var report: String?
    /// Why it was canceled or dead-lettered.
    public var reason: String?
    public var cancelRequested: Bool
    /// The dead-lettered item this one re-drives.
    public var redriveOf: String?
    /// When it entered the set it waits in (AI or readers): the age that aging counts.
    public var waitingSince: Int64

    public init(uid: String, clinic: String, studyInstanceUID: String, storageUnit: String, retrieveURL: String? = nil,
                region: String? = nil, modalities: [String] = [], bodyPart: String? = nil, priority: Priority, label: String = "", expectedCompletion: Int64, createdAt: Int64,
                stage: Stage = .awaitingAI, redriveOf: String? = nil) {
        self.uid = uid
        self.clinic = clinic
        self.studyInstanceUID = studyInstanceUID
        self.storageUnit = storageUnit
        self.retrieveURL = retrieveURL
        self.region = region
        self.modalities = modalities
        self.bodyPart = bodyPart
        self.priority = priority
        self.label = label
        self.expectedCompletion = expectedCompletion
        self.createdAt = createdAt
        self.stage = stage
        self.attempts = 0
        self.aiAttempts = 0
        self.cancelRequested = false
        self.redriveOf = redriveOf
        self.waitingSince = createdAt
    }

    /// The priority readers' order uses: the AI may raise a request's urgency, never lower it.
    public var readPriority: Priority { min(priority, triagePriority ?? priority) }
}
