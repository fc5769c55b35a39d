import GatewayNet
import GatewayServer

/// The lookup interfaces' query parsing (native, QIDO-RS studies and series, FHIR
/// ImagingStudy search), from the request target's percent-decoding on. The first byte
/// picks the interface, the rest is the target. A query may be refused; the refusal must
/// be a 4xx with a machine code, and its message must not quote a long digit run (the
/// shape of every patient identifier a node must never repeat).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQuery(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let interfaces = LookupQueries.Interface.allCases
    let interface = interfaces[Int(data[0]) % interfaces.count]
    let target = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    guard let refusal = LookupQueries.refusal(interface, target: target) else { return 0 }
    precondition((400..<500).contains(refusal.status), "refused with \(refusal.status)")
    precondition(!refusal.code.isEmpty && refusal.code.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F },
                 "machine code '\(refusal.code)'")
    var run = 0
    for c in refusal.message.utf8 {
        run = c >= 0x30 && c <= 0x39 ? run + 1 : 0
        precondition(run <= 8, "the message quotes a digit run: \(refusal.message)")
    }
    return 0
}
