@testable import GatewayServer
@testable import IndexStore
import XCTest

/// A gathered batch is cut by records and by bytes, so that large records never make a
/// batch the national node's body limits refuse (which would stop gathering for good).
final class GathererBatchTests: XCTestCase {
    private func entries(_ sizes: [Int]) -> [OutboxEntry] {
        sizes.enumerated().map { OutboxEntry(sequence: $0.offset + 1, record: String(repeating: "x", count: $0.element)) }
    }

    func testABatchStopsBeforeTheByteBoundAndNeverComesOutEmpty() {
        XCTAssertEqual(Gatherer.prefix(of: entries([100, 100, 100]), records: 10, bytes: 1_000).count, 3)
        XCTAssertEqual(Gatherer.prefix(of: entries([100, 100, 100]), records: 2, bytes: 1_000).count, 2)
        XCTAssertEqual(Gatherer.prefix(of: entries([400, 400, 400]), records: 10, bytes: 1_000).count, 2, "each record counts its newline")
        XCTAssertEqual(Gatherer.prefix(of: entries([399, 399, 399]), records: 10, bytes: 1_200).count, 3)
        XCTAssertEqual(Gatherer.prefix(of: entries([5_000, 10]), records: 10, bytes: 1_000).map(\.sequence), [1],
                       "one record over the bound still travels")
        XCTAssertEqual(Gatherer.prefix(of: entries([10, 10]), records: 0, bytes: 1_000).count, 1)
        XCTAssertEqual(Gatherer.prefix(of: [], records: 10, bytes: 1_000).count, 0)
    }
}
