@testable import PatientTokens
import XCTest

/// The published vectors, byte for byte: RFC 9380 Appendix J.1.1 (hash-to-curve) and
/// RFC 9497 Appendix A.3.2 (P256-SHA256, VOPRF mode, batch sizes 1 and 2).
final class VOPRFVectorTests: XCTestCase {
    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var chars = Array(s.utf8).makeIterator()
        while let h = chars.next(), let l = chars.next() {
            out.append(UInt8(String(bytes: [h, l], encoding: .ascii)!, radix: 16)!)
        }
        return out
    }

    func testHashToCurveVectors() throws {
        let dst = Array("QUUX-V01-CS02-with-P256_XMD:SHA-256_SSWU_RO_".utf8)
        let vectors: [(msg: String, x: String, y: String)] = [
            ("", "2c15230b26dbc6fc9a37051158c95b79656e17a1a920b11394ca91c44247d3e4",
             "8a7a74985cc5c776cdfe4b1f19884970453912e9d31528c060be9ab5c43e8415"),
            ("abc", "0bb8b87485551aa43ed54f009230450b492fead5f1cc91658775dac4a3388a0f",
             "5c41b3d0731a27a7b14bc0bf0ccded2d8751f83493404c84a88e71ffd424212e"),
            ("abcdef0123456789", "65038ac8f2b1def042a5df0b33b1f4eca6bff7cb0f9c6c1526811864e544ed80",
             "cad44d40a656e7aff4002a8de287abc8ae0482b5ae825822bb870d6df9b56ca3"),
        ]
        let curve = try P256()
        for v in vectors {
            let point = try curve.hashToCurve(Array(v.msg.utf8), dst: dst)
            let compressed = try curve.bytes(point)
            XCTAssertEqual(Array(compressed.dropFirst()), Self.hex(v.x), "x for \"\(v.msg)\"")
            let yOdd = Self.hex(v.y).last! & 1 == 1
            XCTAssertEqual(compressed[0], yOdd ? 3 : 2, "y parity for \"\(v.msg)\"")
        }
    }

    func testExpandMessageXMDVectors() {
        // RFC 9380 Appendix K.1, expand_message_xmd(SHA-256), len_in_bytes 0x20.
        let dst = Array("QUUX-V01-CS02-with-expander-SHA256-128".utf8)
        XCTAssertEqual(HashToCurve.expandMessageXMD([], dst: dst, length: 32),
                       Self.hex("68a985b87eb6b46952128911f2a4412bbc302a9d759667f87f7a21d803f07235"))
        XCTAssertEqual(HashToCurve.expandMessageXMD(Array("abc".utf8), dst: dst, length: 32),
                       Self.hex("d8ccab23b5985ccea865c6c97b6e5b8350e794e603b4b97902f53a8a0d605615"))
    }

    static let seed = hex("a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3")
    static let keyInfo = hex("74657374206b6579")
    static let skSm = "ca5d94c8807817669a51b196c34c1b7f8442fde4334a7121ae4736364312fca6"
    static let pkSm = "03e17e70604bcabe198882c0a1f27a92441e774224ed9c702e51dd17038b102462"
    static let blind1 = "3338fa65ec36e0290022b48eb562889d89dbfa691d1cde91517fa222ed7ad364"
    static let blind2 = "f9db001266677f62c095021db018cd8cbb55941d4073698ce45c405d1348b7b1"

    struct Vector {
        var inputs: [String]
        var blinds: [String]
        var blinded: [String]
        var evaluated: [String]
        var proof: String
        var proofRandom: String
        var outputs: [String]
    }

    static let vectors = [
        Vector(inputs: ["00"], blinds: [blind1],
               blinded: ["02dd05901038bb31a6fae01828fd8d0e49e35a486b5c5d4b4994013648c01277da"],
               evaluated: ["0209f33cab60cf8fe69239b0afbcfcd261af4c1c5632624f2e9ba29b90ae83e4a2"],
               proof: "e7c2b3c5c954c035949f1f74e6bce2ed539a3be267d1481e9ddb178533df4c2664f69d065c604a4fd953e100b856ad83804eb3845189babfa5a702090d6fc5fa",
               proofRandom: blind2,
               outputs: ["0412e8f78b02c415ab3a288e228978376f99927767ff37c5718d420010a645a1"]),
        Vector(inputs: ["5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"], blinds: [blind1],
               blinded: ["03cd0f033e791c4d79dfa9c6ed750f2ac009ec46cd4195ca6fd3800d1e9b887dbd"],
               evaluated: ["030d2985865c693bf7af47ba4d3a3813176576383d19aff003ef7b0784a0d83cf1"],
               proof: "2787d729c57e3d9512d3aa9e8708ad226bc48e0f1750b0767aaff73482c44b8d2873d74ec88aebd3504961acea16790a05c542d9fbff4fe269a77510db00abab",
               proofRandom: blind2,
               outputs: ["771e10dcd6bcd3664e23b8f2a710cfaaa8357747c4a8cbba03133967b5c24f18"]),
        Vector(inputs: ["00", "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"], blinds: [blind1, blind2],
               blinded: ["02dd05901038bb31a6fae01828fd8d0e49e35a486b5c5d4b4994013648c01277da",
                         "03462e9ae64cae5b83ba98a6b360d942266389ac369b923eb3d557213b1922f8ab"],
               evaluated: ["0209f33cab60cf8fe69239b0afbcfcd261af4c1c5632624f2e9ba29b90ae83e4a2",
                           "02bb24f4d838414aef052a8f044a6771230ca69c0a5677540fff738dd31bb69771"],
               proof: "bdcc351707d02a72ce49511c7db990566d29d6153ad6f8982fad2b435d6ce4d60da1e6b3fa740811bde34dd4fe0aa1b5fe6600d0440c9ddee95ea7fad7a60cf2",
               proofRandom: "350e8040f828bf6ceca27405420cdf3d63cb3aef005f40ba51943c8026877963",
               outputs: ["0412e8f78b02c415ab3a288e228978376f99927767ff37c5718d420010a645a1",
                         "771e10dcd6bcd3664e23b8f2a710cfaaa8357747c4a8cbba03133967b5c24f18"]),
    ]

    func testDeriveKeyPair() throws {
        let sk = try VOPRFServer.deriveSecretKey(seed: Self.seed, info: Self.keyInfo)
        XCTAssertEqual(sk, Self.hex(Self.skSm))
        XCTAssertEqual(try VOPRFServer(secretKey: sk).publicKey, Self.hex(Self.pkSm))
    }

    func testVOPRFVectorsSingleAndBatch() throws {
        let server = try VOPRFServer(secretKey: Self.hex(Self.skSm))
        let client = try VOPRFClient(publicKey: Self.hex(Self.pkSm))
        for (n, v) in Self.vectors.enumerated() {
            let blinds = try v.blinds.map { try client.curve.scalar(Self.hex($0), secret: true) }
            let batch = try client.blind(v.inputs.map(Self.hex), blinds: blinds)
            XCTAssertEqual(batch.blindedElements, v.blinded.map(Self.hex), "blinded, vector \(n + 1)")
            let r = try server.curve.scalar(Self.hex(v.proofRandom))
            let (evaluated, proof) = try server.blindEvaluate(batch.blindedElements, proofRandom: r)
            XCTAssertEqual(evaluated, v.evaluated.map(Self.hex), "evaluated, vector \(n + 1)")
            XCTAssertEqual(proof, Self.hex(v.proof), "proof, vector \(n + 1)")
            let outputs = try client.finalize(batch, evaluated: evaluated, proof: proof)
            XCTAssertEqual(outputs, v.outputs.map(Self.hex), "output, vector \(n + 1)")
        }
    }

    func testProofFromAnotherKeyIsRefused() throws {
        let honest = try VOPRFServer(secretKey: Self.hex(Self.skSm))
        let other = try VOPRFServer(secretKey: VOPRFServer.generateSecretKey())
        let client = try VOPRFClient(publicKey: honest.publicKey)
        let batch = try client.blind([Array("imaging-gateway/v1/resident-id|110101199003074477".utf8), [1, 2, 3]])
        let (evaluated, proof) = try other.blindEvaluate(batch.blindedElements)
        XCTAssertThrowsError(try client.finalize(batch, evaluated: evaluated, proof: proof)) {
            XCTAssertEqual($0 as? TokenCryptoError, .invalidProof)
        }
        // An honest proof over a tampered list fails too.
        let good = try honest.blindEvaluate(batch.blindedElements)
        XCTAssertThrowsError(try client.finalize(batch, evaluated: good.evaluated.reversed(), proof: good.proof))
        XCTAssertEqual(try client.finalize(batch, evaluated: good.evaluated, proof: good.proof).count, 2)
    }

    func testMalformedElementsAreRefused() throws {
        let server = try VOPRFServer(secretKey: Self.hex(Self.skSm))
        let bad: [[UInt8]] = [[], [0], [UInt8](repeating: 0, count: 33), [4] + [UInt8](repeating: 1, count: 32),
                              [2] + [UInt8](repeating: 0xFF, count: 32), Self.hex(Self.pkSm) + [0]]
        for element in bad {
            XCTAssertThrowsError(try server.blindEvaluate([element])) {
                XCTAssertEqual($0 as? TokenCryptoError, .invalidElement)
            }
        }
        XCTAssertThrowsError(try server.blindEvaluate([])) { XCTAssertEqual($0 as? TokenCryptoError, .batchMismatch) }
    }
}
