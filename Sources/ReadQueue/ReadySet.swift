import DequeModule
import HeapModule

/// The items waiting in one stage (for the AI, or for readers), and the rule that picks
/// the next one (Protocols/reads.md):
///
/// 1. Aging, capped: an item that has waited `agingMs` or longer goes before any fresh
///    one, oldest first. LOW work under a constant stream of HIGH therefore waits at most
///    about `agingMs` plus the time to serve what aged before it.
/// 2. Otherwise priority: HIGH, then MEDIUM, then LOW.
/// 3. Within a priority, fair share: the clinic served least recently goes first, so one
///    clinic's burst cannot push the others back.
/// 4. Within a clinic, expected completion, earliest first, then arrival.
///
/// Costs: insert O(log n); removal is lazy (a generation number marks live entries, dead
/// ones are dropped when they surface); a pick looks at one head per (label, priority,
/// clinic) lane, so it grows with the number of clinics, not of items.
struct ReadySet {
    private struct Entry: Comparable {
        let uid: String
        let clinic: String
        let expectedCompletion: Int64
        let waitingSince: Int64
        let generation: Int

        static func < (a: Entry, b: Entry) -> Bool {
            (a.expectedCompletion, a.waitingSince, a.generation) < (b.expectedCompletion, b.waitingSince, b.generation)
        }
    }

    private struct Lane: Hashable {
        let label: String
        let priority: Workitem.Priority
    }

    private var byClinic: [Lane: [String: Heap<Entry>]] = [:]
    /// Per lane in arrival order: aging reads the oldest at the head.
    private var arrivals: [Lane: Deque<Entry>] = [:]
    private var live: [String: Int] = [:]
    private var lastServed: [String: Int] = [:]
    private var served = 0
    private var generation = 0

    var count: Int { live.count }

    func contains(_ uid: String) -> Bool { live[uid] != nil }

    /// Adds `item` under `priority`. Callers insert in order of `waitingSince` (the
    /// arrival deques rely on it); a reload sorts first.
    mutating func insert(_ item: Workitem, priority: Workitem.Priority) {
        generation += 1
        let entry = Entry(uid: item.uid, clinic: item.clinic, expectedCompletion: item.expectedCompletion,
                          waitingSince: item.waitingSince, generation: generation)
        let lane = Lane(label: item.label, priority: priority)
        live[item.uid] = generation
        byClinic[lane, default: [:]][item.clinic, default: Heap()].insert(entry)
        arrivals[lane, default: Deque()].append(entry)
    }

    mutating func remove(_ uid: String) {
        live[uid] = nil
    }

    /// Takes the next item by the rule above, among lanes whose label is in `labels` (all
    /// when nil), and returns its UID.
    mutating func popNext(now: Int64, agingMs: Int64, labels: Set<String>?) -> String? {
        let lanes = byClinic.keys.filter { labels?.contains($0.label) ?? true }
        var oldest: Entry?
        for lane in lanes {
            guard let head = liveHead(of: lane), head.waitingSince + agingMs <= now else { continue }
            if oldest == nil || (head.waitingSince, head.generation) < (oldest!.waitingSince, oldest!.generation) { oldest = head }
        }
        if let oldest { return take(oldest) }
        for priority in Workitem.Priority.allCases {
            var best: (rank: Int, entry: Entry, lane: Lane)?
            for lane in lanes where lane.priority == priority {
                for clinic in byClinic[lane].map({ Array($0.keys) }) ?? [] {
                    guard let head = liveHead(of: lane, clinic: clinic) else { continue }
                    let rank = lastServed[clinic] ?? -1
                    if best == nil || (rank, head) < (best!.rank, best!.entry) { best = (rank, head, lane) }
                }
            }
            if let best { return take(best.entry) }
        }
        return nil
    }

    private mutating func take(_ entry: Entry) -> String {
        live[entry.uid] = nil
        served += 1
        lastServed[entry.clinic] = served
        return entry.uid
    }

    private func isLive(_ e: Entry) -> Bool { live[e.uid] == e.generation }

    private mutating func liveHead(of lane: Lane) -> Entry? {
        while let head = arrivals[lane]?.first {
            if isLive(head) { return head }
            arrivals[lane]!.removeFirst()
        }
        arrivals[lane] = nil
        return nil
    }

    private mutating func liveHead(of lane: Lane, clinic: String) -> Entry? {
        while let head = byClinic[lane]?[clinic]?.min {
            if isLive(head) { return head }
            byClinic[lane]![clinic]!.removeMin()
        }
        byClinic[lane]?[clinic] = nil
        if byClinic[lane]?.isEmpty == true { byClinic[lane] = nil }
        return nil
    }
}
