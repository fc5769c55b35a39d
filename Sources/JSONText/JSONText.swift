// JSON string literals, shared by the transport (error bodies) and the imaging model (DICOM JSON,
// native records): one escaping rule, JSONWriter's.

/// Encodes `s` as a JSON string literal.
public func jsonString(_ s: String) -> String {
    var out = JSONWriter(capacity: s.utf8.count + 2)
    out.string(s)
    return String(decoding: out.bytes, as: UTF8.self)
}
