import Foundation
import PatientTokens

/// What the token service and the agent decode from others: base64url text, 33-byte
/// elements (any bytes: off-curve, identity, x ≥ p), proofs; and the identifiers a
/// hospital's file may hold. The first byte picks which.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokens(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let rest = Array(bytes.dropFirst())
    switch bytes[0] % 4 {
    case 0:
        let elements = stride(from: 0, to: rest.count, by: 33).map { Array(rest[$0..<min($0 + 33, rest.count)]) }
        if let evaluated = try? Fuzz.server.blindEvaluate(elements) {
            precondition(evaluated.evaluated.count == elements.count)
        }
    case 1:
        let text = String(decoding: rest, as: UTF8.self)
        if let decoded = Base64URL.decode(text) { precondition(Base64URL.encode(decoded) == text) }
        _ = PatientToken(text)
    case 2:
        let text = String(decoding: rest, as: UTF8.self)
        if let id = try? TokenInput.residentID(text) {
            precondition(id.normalized.utf8.count == 18, "a resident ID normalized to another length")
            precondition((try? TokenInput.residentID(id.normalized))?.normalized == id.normalized, "normalization not idempotent")
        }
        _ = try? TokenInput.personCode(text)
        let parts = text.split(separator: "|", maxSplits: 2).map(String.init)
        if parts.count == 3 { _ = try? TokenInput.nameBirthSex(name: parts[0], birthDate: parts[1], sex: parts[2]) }
    default:
        guard rest.count >= 64 else { return 0 }
        let batch = try! Fuzz.client.blind([rest])
        _ = try? Fuzz.client.finalize(batch, evaluated: [Array(rest.prefix(33))], proof: Array(rest.suffix(64)))
    }
    return 0
}

enum Fuzz {
    nonisolated(unsafe) static let server = try! VOPRFServer(secretKey: [UInt8](repeating: 7, count: 32))
    nonisolated(unsafe) static let client = try! VOPRFClient(publicKey: server.publicKey)
}
