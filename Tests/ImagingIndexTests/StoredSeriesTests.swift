import Foundation
import XCTest
import ImagingIndex

/// The series column's text: what the store writes comes back field for field, and rows
/// written before by JSONEncoder (the same keys) still read.
final class StoredSeriesTests: XCTestCase {
    private func series() -> [SeriesRecord] {
        var full = SeriesRecord(seriesInstanceUID: "1.2.156.7.1", modality: "CT")
        full.seriesNumber = 2_147_483_647
        full.seriesDescription = "Axial \"thin\" \\ 1 mm\u{1}é"
        full.bodyPartExamined = "CHEST"
        full.numberOfSeriesRelatedInstances = 0
        return [full, SeriesRecord(seriesInstanceUID: "1.2.156.7.2", modality: "SR")]
    }

    func testWhatIsWrittenReadsBackFieldForField() {
        let text = SeriesRecord.storedJSON(series())
        XCTAssertEqual(SeriesRecord.fromStoredJSON(text), series())
        XCTAssertEqual(SeriesRecord.fromStoredJSON(SeriesRecord.storedJSON([])), [])
    }

    func testJSONEncodersTextFromOlderRowsStillReads() throws {
        let old = String(decoding: try JSONEncoder().encode(series()), as: UTF8.self)
        XCTAssertEqual(SeriesRecord.fromStoredJSON(old), series())
    }

    func testTextThatIsNotASeriesArrayIsNil() {
        for bad in ["", "{}", "[1]", "[{\"modality\":\"CT\"}]", "[{\"seriesInstanceUID\":\"1.2\",\"modality\":3}]", "[{"] {
            XCTAssertNil(SeriesRecord.fromStoredJSON(bad), bad)
        }
    }
}
