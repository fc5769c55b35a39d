import ImagingIndex
import XCTest

/// The repeat-examination rule on fixed days: windows per modality, body part (study or
/// series level) or exam item, and the calendar arithmetic under it.
final class PriorExamRuleTests: XCTestCase {
    let rule = PriorExamRule.standard
    let today = "20261124"

    func study(_ modality: String, daysAgo: Int, bodyPart: String? = nil, examItem: String? = nil,
               seriesBodyPart: String? = nil) -> StudyRecord {
        var s = StudyRecord(patientToken: "v1:x", studyInstanceUID: "1.2.\(daysAgo)",
                            studyDate: CivilDay(today)!.adding(days: -daysAgo).text, modalitiesInStudy: [modality, "SR"],
                            storageUnit: "91610000MA6TG0001A", retrieveURL: "https://pacs.example", region: "610100")
        s.bodyPartExamined = bodyPart
        s.examItemCode = examItem
        if let seriesBodyPart {
            var series = SeriesRecord(seriesInstanceUID: "1.2.3", modality: modality)
            series.bodyPartExamined = seriesBodyPart
            s.series = [series]
        }
        return s
    }

    func testWindowsPerModalityIncludeTheirLastDayAndNoMore() {
        let ct = PriorExamRule.Planned(modality: "ct", bodyPart: "chest")
        XCTAssertTrue(rule.matches(study("CT", daysAgo: 30, bodyPart: "CHEST"), ct, today: today), "day 30 of a 30-day window")
        XCTAssertFalse(rule.matches(study("CT", daysAgo: 31, bodyPart: "CHEST"), ct, today: today))
        XCTAssertFalse(rule.matches(study("CT", daysAgo: -1, bodyPart: "CHEST"), ct, today: today), "a study dated tomorrow")
        let mr = PriorExamRule.Planned(modality: "MR")
        XCTAssertTrue(rule.matches(study("MR", daysAgo: 60), mr, today: today))
        XCTAssertFalse(rule.matches(study("MR", daysAgo: 61), mr, today: today))
        let dx = PriorExamRule.Planned(modality: "DX", bodyPart: "CHEST")
        XCTAssertTrue(rule.matches(study("DX", daysAgo: 14, bodyPart: "CHEST"), dx, today: today))
        XCTAssertFalse(rule.matches(study("DX", daysAgo: 15, bodyPart: "CHEST"), dx, today: today))
        XCTAssertEqual(rule.window(for: "XA"), 30, "unlisted modalities use the default")
        let wider = PriorExamRule.Planned(modality: "DX", bodyPart: "CHEST", days: 20)
        XCTAssertTrue(rule.matches(study("DX", daysAgo: 20, bodyPart: "CHEST"), wider, today: today), "days overrides the window")
    }

    func testBodyPartOrExamItemMustMatchWhenNamed() {
        let planned = PriorExamRule.Planned(modality: "CT", bodyPart: "CHEST", examItem: "250301001")
        XCTAssertFalse(rule.matches(study("CT", daysAgo: 3, bodyPart: "HEAD"), planned, today: today))
        XCTAssertTrue(rule.matches(study("CT", daysAgo: 3, bodyPart: "HEAD", seriesBodyPart: "CHEST"), planned, today: today),
                      "a series' body part counts")
        XCTAssertTrue(rule.matches(study("CT", daysAgo: 3, bodyPart: "ABDOMEN", examItem: "250301001"), planned, today: today),
                      "the exam item counts when the body part differs")
        XCTAssertFalse(rule.matches(study("MR", daysAgo: 3, bodyPart: "CHEST"), planned, today: today), "another modality")
        XCTAssertTrue(rule.matches(study("CT", daysAgo: 3), PriorExamRule.Planned(modality: "CT"), today: today),
                      "neither named: modality alone")
        XCTAssertEqual(PriorExamRule.ageDays(study("CT", daysAgo: 12), today: today), 12)
    }

    func testCivilDaysRoundTripAcrossMonthsLeapYearsAndCenturies() {
        for text in ["19700101", "20000229", "21000228", "20241231", "20250101", "19000301"] {
            XCTAssertEqual(CivilDay(text)?.text, text)
        }
        XCTAssertEqual(CivilDay("20240301")?.adding(days: -1).text, "20240229")
        XCTAssertEqual(CivilDay("21000301")?.adding(days: -1).text, "21000228", "2100 is not a leap year")
        XCTAssertEqual(CivilDay("20261124")?.adding(days: 30).text, "20261224")
        XCTAssertNil(CivilDay("20260230"))
        XCTAssertEqual(CivilDay("19700101")?.ordinal, 0)
    }
}
