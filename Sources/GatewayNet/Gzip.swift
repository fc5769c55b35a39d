import CZlib

/// gzip and deflate through zlib, bounded: inflation stops with an error the moment its
/// output would pass `limit`, so a small bomb never becomes a large allocation.
public enum Gzip {
    public enum Failure: Error, Equatable {
        case tooLarge
        case corrupt
    }

    /// Decodes a gzip (`gzip`, `x-gzip`) or zlib (`deflate`) body; windowBits 15+32 lets
    /// zlib detect which of the two headers it got.
    public static func decompress(_ input: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corrupt
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var status: Int32 = Z_OK
        let result: Failure? = input.withUnsafeBufferPointer { inBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = UInt32(inBuf.count)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = UInt32(outBuf.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return outBuf.count - Int(stream.avail_out)
                }
                guard status == Z_OK || status == Z_STREAM_END else { return .corrupt }
                guard output.count + produced <= limit else { return .tooLarge }
                output.append(contentsOf: chunk[0..<produced])
                if status == Z_OK && produced == 0 && stream.avail_in == 0 { return .corrupt }
            } while status != Z_STREAM_END
            return stream.avail_in == 0 ? nil : .corrupt
        }
        if let result { throw result }
        return output
    }

    /// Encodes `input` as a gzip member at a speed-leaning level: responses are
    /// compressed per request on the loop, so CPU matters more than the last percent.
    public static func compress(_ input: [UInt8], level: Int32 = 5) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return [] }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))))
        let written: Int = input.withUnsafeBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
                stream.avail_in = UInt32(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = UInt32(outBuf.count)
                guard deflate(&stream, Z_FINISH) == Z_STREAM_END else { return 0 }
                return outBuf.count - Int(stream.avail_out)
            }
        }
        output.removeSubrange(written...)
        return output
    }
}

extension HTTPRequest {
    /// Undoes a gzip or deflate Content-Encoding, its output bounded by `limit` bytes; the
    /// request then reads as if sent unencoded.
    mutating func decodeContentEncoding(limit: Int) throws(HTTPError) {
        guard let coding = headers["Content-Encoding"]?.trimmingOWS().lowercased(), coding != "identity" else { return }
        guard ["gzip", "x-gzip", "deflate"].contains(coding) else {
            throw HTTPError(415, "unsupported_content_encoding", "Request bodies may be gzip or deflate encoded only.")
        }
        do {
            body = try Gzip.decompress(body, limit: limit)
        } catch .tooLarge {
            throw HTTPError(413, "decompressed_too_large", "The decompressed body exceeds \(limit) bytes.")
        } catch {
            throw HTTPError(400, "corrupt_encoding", "The \(coding) body could not be decoded.")
        }
        headers.remove("Content-Encoding")
        headers.set("Content-Length", String(body.count))
    }
}
