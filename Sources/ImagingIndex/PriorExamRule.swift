/// The repeat-examination rule: a study is a prior for a planned examination when it has
/// the same modality, the same body part or the same exam item code (when either is
/// given; neither given: modality alone), and a study date inside the modality's window
/// before today. Any prior makes the verdict `repeat-candidate`. Protocols/priors.md.
public struct PriorExamRule: Sendable, Equatable {
    /// Window in days per modality; modalities not listed use `defaultWindowDays`.
    public var windowDays: [String: Int]
    public var defaultWindowDays: Int

    /// CT 30 days, MR 60, radiography (DX — what is called DR in the clinic — and CR) 14,
    /// ultrasound 14, PET and nuclear medicine 90, mammography 180, others 30.
    public static let standard = PriorExamRule(windowDays: ["CT": 30, "MR": 60, "DX": 14, "CR": 14, "PT": 90,
                                                            "NM": 90, "MG": 180, "US": 14],
                                               defaultWindowDays: 30)

    public init(windowDays: [String: Int], defaultWindowDays: Int) {
        self.windowDays = windowDays
        self.defaultWindowDays = defaultWindowDays
    }

    public func window(for modality: String) -> Int {
        windowDays[modality.uppercased()] ?? defaultWindowDays
    }

    /// The examination a doctor is about to order.
    public struct Planned: Sendable, Equatable {
        public var modality: String
        public var bodyPart: String?
        public var examItem: String?
        /// Overrides the modality's window when given.
        public var days: Int?

        public init(modality: String, bodyPart: String? = nil, examItem: String? = nil, days: Int? = nil) {
            self.modality = modality.uppercased()
            self.bodyPart = bodyPart.map { $0.uppercased() }
            self.examItem = examItem
            self.days = days
        }
    }

    public enum Verdict: String, Sendable, Equatable {
        case repeatCandidate = "repeat-candidate"
        case none
    }

    public func windowDays(for planned: Planned) -> Int {
        planned.days ?? window(for: planned.modality)
    }

    /// The first day (YYYYMMDD) inside the window that ends on `today` (YYYYMMDD).
    public func firstDay(for planned: Planned, today: String) -> String? {
        CivilDay(today).map { $0.adding(days: -windowDays(for: planned)).text }
    }

    /// Whether `study` is a prior for `planned`, judged on `today` (YYYYMMDD).
    public func matches(_ study: StudyRecord, _ planned: Planned, today: String) -> Bool {
        guard study.modalitiesInStudy.contains(where: { $0.uppercased() == planned.modality }),
              let first = firstDay(for: planned, today: today), study.studyDate >= first, study.studyDate <= today
        else { return false }
        if planned.bodyPart == nil, planned.examItem == nil { return true }
        let parts = Set(([study.bodyPartExamined] + (study.series ?? []).map(\.bodyPartExamined)).compactMap { $0?.uppercased() })
        if let part = planned.bodyPart, parts.contains(part) { return true }
        if let item = planned.examItem, study.examItemCode == item { return true }
        return false
    }

    /// Days from the study's date to `today`.
    public static func ageDays(_ study: StudyRecord, today: String) -> Int? {
        guard let from = CivilDay(study.studyDate), let to = CivilDay(today) else { return nil }
        return to.ordinal - from.ordinal
    }
}

/// A proleptic Gregorian day as YYYYMMDD, with day arithmetic (days since 1970-01-01).
public struct CivilDay: Sendable, Equatable {
    public let ordinal: Int

    public init?(_ text: String) {
        let d = Array(text.utf8)
        guard d.count == 8, d.allSatisfy({ $0 >= 48 && $0 <= 57 }), Codes.isDate(text) else { return nil }
        func n(_ r: Range<Int>) -> Int { r.reduce(0) { $0 * 10 + Int(d[$1] - 48) } }
        ordinal = Self.days(year: n(0..<4), month: n(4..<6), day: n(6..<8))
    }

    public init(ordinal: Int) {
        self.ordinal = ordinal
    }

    public init(year: Int, month: Int, day: Int) {
        ordinal = Self.days(year: year, month: month, day: day)
    }

    public func adding(days: Int) -> CivilDay { CivilDay(ordinal: ordinal + days) }

    public var text: String {
        // Howard Hinnant's civil_from_days.
        let z = ordinal + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ v: Int, _ w: Int) -> String { String(repeating: "0", count: max(0, w - String(v).count)) + String(v) }
        return pad(year, 4) + pad(month, 2) + pad(day, 2)
    }

    /// Howard Hinnant's days_from_civil.
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
