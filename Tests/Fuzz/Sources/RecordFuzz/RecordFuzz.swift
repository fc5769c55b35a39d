import Foundation
import ImagingIndex

/// The upload path after transport: a line decoded as a JSON object, then validated
/// field by field (UIDs, dates, the NHSA index code, unified social credit codes, tokens,
/// plain-identifier patterns). It may refuse; it must not crash, and what it accepts must
/// survive its own JSON and validation again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecord(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    guard let object = JSONValue.parseObject(bytes) else { return 0 }
    guard case .success(let record) = StudyRecord.validate(object) else { return 0 }
    let again = JSONValue.parseObject(Array(record.jsonText.utf8))
    guard let again, case .success(let same) = StudyRecord.validate(again) else {
        preconditionFailure("an accepted record does not validate from its own JSON")
    }
    precondition(same == record, "a record changed through its own JSON")
    _ = DicomJSON.study(record, include: [])
    return 0
}
