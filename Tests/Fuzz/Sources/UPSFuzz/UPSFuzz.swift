import ImagingIndex
import ReadQueue

/// UPS-RS bodies as the read routes take them: a create dataset and a state change,
/// parsed from the same bytes, and any Expected Completion DT. They may refuse; they must
/// not crash, and an accepted create's DT must render and parse back to the same second.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUPS(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let created = try? UPSJSON.create(bytes), let due = created.expectedCompletion, due >= 0, due < 7_258_118_400_000 {
        precondition(UPSJSON.dateTime(UPSJSON.dateTime(ms: due)) == due / 1000 * 1000, "a DT does not round-trip")
    }
    _ = try? UPSJSON.stateChange(bytes)
    _ = UPSJSON.dateTime(String(decoding: bytes.prefix(64), as: UTF8.self))
    return 0
}
