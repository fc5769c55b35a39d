import GatewayNet

/// Inflation of untrusted bodies: any bytes must give output within the limit or a
/// refusal, never a crash; what compresses must come back unchanged.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGzip(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let out = try? Gzip.decompress(bytes, limit: 1 << 16) {
        precondition(out.count <= 1 << 16, "inflated past the limit")
    }
    let round = try? Gzip.decompress(Gzip.compress(bytes), limit: max(1, bytes.count))
    precondition(bytes.isEmpty || round == bytes, "a compressed body did not come back unchanged")
    return 0
}
