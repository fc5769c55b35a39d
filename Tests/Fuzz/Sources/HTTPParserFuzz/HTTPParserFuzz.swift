@testable import GatewayNet

/// One input: the first byte picks where the rest is cut, the rest is fed to a parser in
/// those pieces, as a connection would feed it. The parser may refuse input, but must
/// never crash, consume more than it was given, or loop without progress; a body it
/// hands over must respect the limits.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let stride = Int(bytes[0] % 31) + 1
    var limits = HTTPLimits()
    limits.maxBodyBytes = 4096
    limits.maxHeaderBytes = 2048
    limits.maxRequestLine = 512
    limits.maxHeaderCount = 16
    var parser = HTTPRequestParser(limits: limits)
    var buffer: [UInt8] = []
    var at = 1
    while at < bytes.count {
        buffer += bytes[at..<min(at + stride, bytes.count)]
        at += stride
        while true {
            let result = buffer.withUnsafeBytes { b in Result { () throws(HTTPError) in try parser.parse(b) } }
            guard case .success(let (consumed, event)) = result else { return 0 }
            precondition(consumed <= buffer.count, "consumed more than given")
            buffer.removeFirst(consumed)
            if case .request(let request) = event {
                precondition(request.body.count <= limits.maxBodyBytes, "body over the limit")
                if request.headers["Content-Encoding"] != nil {
                    _ = try? Gzip.decompress(request.body, limit: 1 << 16)
                }
            }
            if consumed == 0, case .needMore = event { break }
        }
    }
    return 0
}
