import Foundation
import ImagingIndex
import XCTest

/// The Bundle is written by hand, so its shape is checked here by reading it back with
/// Foundation's parser (the live server's Bundles are also parsed by fhir.resources in
/// StandardClientsTests).
final class FHIRMappingTests: XCTestCase {
    func testASearchBundleHoldsEachStudyItsEndpointsOnceAndTheIncompleteRegions() throws {
        var first = StudyRecord(patientToken: "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", studyInstanceUID: "1.2.3",
                                studyDate: "20241122", modalitiesInStudy: ["CT", "SR"], storageUnit: "91610000MA6TG0001A",
                                retrieveURL: "https://pacs.example/dicomweb", region: "610100")
        first.accessionNumber = "A\"1"
        first.studyTime = "0930"
        first.timezoneOffset = "+0800"
        first.examItemCode = "CT-HEAD"
        var series = SeriesRecord(seriesInstanceUID: "1.2.3.1", modality: "CT")
        series.bodyPartExamined = "HEAD"
        series.seriesNumber = 2
        first.series = [series]
        var second = first
        second.studyInstanceUID = "1.2.4"
        second.accessionNumber = nil
        second.series = nil
        let bytes = FHIRMapping.searchBundle([first, second], base: "https://gw/fhir", selfURL: "https://gw/fhir/ImagingStudy?x=1",
                                             incomplete: [("100000", "timeout")])
        let bundle = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        XCTAssertEqual(bundle["resourceType"] as? String, "Bundle")
        XCTAssertEqual(bundle["type"] as? String, "searchset")
        XCTAssertEqual(bundle["total"] as? Int, 2)
        let entries = try XCTUnwrap(bundle["entry"] as? [[String: Any]])
        let modes = entries.compactMap { ($0["search"] as? [String: Any])?["mode"] as? String }
        XCTAssertEqual(modes, ["match", "match", "include", "outcome"], "one Endpoint for the two studies' one address")
        let study = try XCTUnwrap(entries[0]["resource"] as? [String: Any])
        XCTAssertEqual(entries[0]["fullUrl"] as? String, "https://gw/fhir/ImagingStudy/" + FHIRMapping.studyID(first))
        XCTAssertEqual(study["started"] as? String, "2024-11-22T09:30:00+08:00")
        let identifiers = try XCTUnwrap(study["identifier"] as? [[String: Any]])
        XCTAssertEqual(identifiers.first?["value"] as? String, "urn:oid:1.2.3")
        XCTAssertEqual(identifiers.last?["value"] as? String, "A\"1", "escaped and read back")
        XCTAssertEqual(((study["subject"] as? [String: Any])?["identifier"] as? [String: Any])?["value"] as? String, first.patientToken)
        XCTAssertEqual((study["modality"] as? [[String: Any]])?.compactMap { $0["code"] as? String }, ["CT", "SR"])
        XCTAssertEqual(((study["series"] as? [[String: Any]])?.first?["bodySite"] as? [String: Any])?["display"] as? String, "HEAD")
        XCTAssertEqual(study["numberOfSeries"] as? Int, 1)
        XCTAssertNil((entries[1]["resource"] as? [String: Any])?["series"])
        let endpoint = try XCTUnwrap(entries[2]["resource"] as? [String: Any])
        XCTAssertEqual(endpoint["address"] as? String, "https://pacs.example/dicomweb")
        XCTAssertEqual((study["endpoint"] as? [[String: Any]])?.first?["reference"] as? String, "Endpoint/" + FHIRMapping.endpointID(first))
        let issue = ((entries[3]["resource"] as? [String: Any])?["issue"] as? [[String: Any]])?.first
        XCTAssertEqual(issue?["code"] as? String, "timeout")
        XCTAssertEqual(issue?["diagnostics"] as? String, "region 100000: timeout")
    }
}
