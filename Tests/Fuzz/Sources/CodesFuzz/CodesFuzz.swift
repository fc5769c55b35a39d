import Foundation
import ImagingIndex

/// The code parsers on their own: the first byte picks the scalar checks (UID, DA, TM,
/// offset, region, token, unified social credit code, each against the rule written out
/// again here) or the NHSA index code inside an otherwise valid record (where an empty
/// string, like any empty optional field, means no code).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCodes(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    if data[0] % 2 == 0 {
        scalars(text)
    } else {
        indexCode(text)
    }
    return 0
}

private func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

private func scalars(_ text: String) {
    let b = Array(text.utf8)
    if Codes.isUID(text) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        precondition(b.count <= 64 && parts.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy(isDigit) && ($0 == "0" || $0.first != "0") },
                     "UID accepted: \(text)")
    }
    if Codes.isDate(text) { precondition(b.count == 8 && b.allSatisfy(isDigit), "DA accepted: \(text)") }
    if Codes.isDate(text) { precondition(Codes.isCalendarDate(text), "a DA that is not a calendar date: \(text)") }
    if Codes.isCalendarDate(text) { precondition(b.count == 8 && b.allSatisfy(isDigit), "calendar date accepted: \(text)") }
    _ = Codes.isTime(text)
    if Codes.isTimezoneOffset(text) { precondition(b.count == 5 && (b[0] == 0x2B || b[0] == 0x2D), "offset accepted: \(text)") }
    if Codes.isRegion(text) { precondition(b.count == 6 && b.allSatisfy(isDigit), "region accepted: \(text)") }
    if Codes.isPatientToken(text) { precondition(text.hasPrefix("v") && b.count <= 54, "token accepted: \(text)") }
    precondition(Codes.isUSCC(text) == creditCodeHolds(b), "USCC disagrees with GB 32100 on \(text)")
}

/// GB 32100-2015 written out independently: 31 characters, weights 3^i mod 31.
private func creditCodeHolds(_ b: [UInt8]) -> Bool {
    let alphabet = Array("0123456789ABCDEFGHJKLMNPQRTUWXY".utf8)
    guard b.count == 18 else { return false }
    var sum = 0, weight = 1
    for c in b[0..<17] {
        guard let value = alphabet.firstIndex(of: c) else { return false }
        sum += value * weight
        weight = weight * 3 % 31
    }
    return b[17] == alphabet[(31 - sum % 31) % 31]
}

private let token = "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ"
private let unit = "91610000MA6TG0001A"

private func indexCode(_ code: String) {
    let fields: [String: Any] = [
        "patientToken": token, "studyInstanceUID": "1.2.840.113619.2.55.3.604688119.969", "studyDate": "20241122",
        "modalitiesInStudy": ["CT"], "storageUnit": unit, "retrieveURL": "https://pacs.example/dicomweb",
        "region": "610100", "nhsaIndexCode": code,
    ]
    guard let json = try? JSONSerialization.data(withJSONObject: fields), let object = JSONValue.parseObject(json) else { return }
    guard case .success(let record) = StudyRecord.validate(object) else { return }
    guard let stored = record.nhsaIndexCode else {
        precondition(code.isEmpty, "an index code was dropped: \(code)")
        return
    }
    let parts = code.split(separator: "-", omittingEmptySubsequences: false)
    precondition(code.hasPrefix(token + "-") && code.hasSuffix("-" + unit) && parts.count >= 5 && stored == code,
                 "index code accepted: \(code)")
}
