import COpenSSL

/// RFC 9497 VOPRF in verifiable mode (0x01) with the P256-SHA256 suite (§4.3), batched:
/// one DLEQ proof covers a whole batch (§2.2.1 composites). Section numbers name the step.
///
/// Server and client objects are not Sendable: each owns a `P256` (a BN_CTX). Keep one per
/// worker thread.
enum VOPRFSuite {
    /// §3.1 contextString = "OPRFV1-" || I2OSP(mode, 1) || "-" || identifier.
    static let context: [UInt8] = Array("OPRFV1-".utf8) + [0x01] + Array("-P256-SHA256".utf8)
    static let hashToGroupDST = Array("HashToGroup-".utf8) + context
    static let hashToScalarDST = Array("HashToScalar-".utf8) + context
    static let deriveKeyPairDST = Array("DeriveKeyPair".utf8) + context
    static let seedDST = Array("Seed-".utf8) + context

    /// I2OSP(len(x), 2) || x, the framing every transcript uses.
    static func framed(_ bytes: [UInt8]) -> [UInt8] {
        [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes
    }

    /// §2.2.1 ComputeComposites' per-element weights dᵢ, shared by prover and verifier.
    static func compositeWeights(_ curve: P256, publicKey: [UInt8], blinded: [[UInt8]],
                                 evaluated: [[UInt8]]) -> [Scalar] {
        let seed = HashToCurve.sha256(framed(publicKey) + framed(seedDST))
        return zip(blinded, evaluated).enumerated().map { i, pair in
            let transcript = framed(seed) + [UInt8(i >> 8), UInt8(i & 0xFF)] + framed(pair.0) + framed(pair.1)
                + Array("Composite".utf8)
            return curve.hashToScalar(transcript, dst: hashToScalarDST)
        }
    }

    /// §2.2.1 the challenge c over (B, M, Z, t2, t3).
    static func challenge(_ curve: P256, _ elements: [[UInt8]]) -> Scalar {
        curve.hashToScalar(elements.flatMap(framed) + Array("Challenge".utf8), dst: hashToScalarDST)
    }
}

/// The token service's side: holds the secret key, evaluates blinded elements.
public final class VOPRFServer {
    let curve: P256
    let secretKey: Scalar
    public let publicKey: [UInt8]

    public init(secretKey: [UInt8]) throws(TokenCryptoError) {
        curve = try P256()
        self.secretKey = try curve.scalar(secretKey, secret: true)
        publicKey = try curve.bytes(try curve.multiplyGenerator(self.secretKey))
    }

    /// §3.2.1 GenerateKeyPair: a fresh random secret key, 32 bytes.
    public static func generateSecretKey() throws(TokenCryptoError) -> [UInt8] {
        let curve = try P256()
        return curve.bytes(try curve.randomScalar())
    }

    /// §3.2.1 DeriveKeyPair(seed, info): the secret key, deterministically.
    public static func deriveSecretKey(seed: [UInt8], info: [UInt8]) throws(TokenCryptoError) -> [UInt8] {
        let curve = try P256()
        let input = seed + VOPRFSuite.framed(info)
        for counter in 0...255 {
            let sk = curve.hashToScalar(input + [UInt8(counter)], dst: VOPRFSuite.deriveKeyPairDST)
            if BN_is_zero(sk.bn) == 0 { return curve.bytes(sk) }
        }
        throw .invalidScalar
    }

    /// §3.3.2 BlindEvaluate over a batch, with one proof (§2.2.1 GenerateProof).
    public func blindEvaluate(_ blinded: [[UInt8]]) throws(TokenCryptoError) -> (evaluated: [[UInt8]], proof: [UInt8]) {
        try blindEvaluate(blinded, proofRandom: try curve.randomScalar())
    }

    func blindEvaluate(_ blinded: [[UInt8]], proofRandom r: Scalar) throws(TokenCryptoError)
        -> (evaluated: [[UInt8]], proof: [UInt8])
    {
        guard !blinded.isEmpty, blinded.count <= 0xFFFF else { throw .batchMismatch }
        var elements: [Element] = []
        var evaluated: [[UInt8]] = []
        elements.reserveCapacity(blinded.count)
        evaluated.reserveCapacity(blinded.count)
        for bytes in blinded {
            let element = try curve.element(bytes)
            elements.append(element)
            evaluated.append(try curve.bytes(try curve.multiply(secretKey, element)))
        }
        // ComputeCompositesFast: M = Σ dᵢ·Cᵢ, Z = k·M.
        let weights = VOPRFSuite.compositeWeights(curve, publicKey: publicKey, blinded: blinded, evaluated: evaluated)
        let m = try curve.multiplySum(weights, elements)
        let z = try curve.multiply(secretKey, m)
        let t2 = try curve.multiplyGenerator(r)
        let t3 = try curve.multiply(r, m)
        let c = VOPRFSuite.challenge(curve, [publicKey, try curve.bytes(m), try curve.bytes(z),
                                             try curve.bytes(t2), try curve.bytes(t3)])
        let s = try curve.proofResponse(r: r, c: c, k: secretKey)
        return (evaluated, curve.bytes(c) + curve.bytes(s))
    }
}

/// One client batch between Blind and Finalize: the inputs, their secret blinds and the
/// blinded elements sent to the service.
public final class BlindedBatch {
    let inputs: [[UInt8]]
    let blinds: [Scalar]
    let blindedPoints: [Element]
    public let blindedElements: [[UInt8]]

    init(inputs: [[UInt8]], blinds: [Scalar], blindedPoints: [Element], blindedElements: [[UInt8]]) {
        self.inputs = inputs
        self.blinds = blinds
        self.blindedPoints = blindedPoints
        self.blindedElements = blindedElements
    }
}

/// The agent's side: blinds inputs, verifies the batch proof against a pinned public key,
/// and unblinds to the 32-byte PRF outputs.
public final class VOPRFClient {
    let curve: P256
    let publicKey: Element
    let publicKeyBytes: [UInt8]

    public init(publicKey: [UInt8]) throws(TokenCryptoError) {
        curve = try P256()
        self.publicKey = try curve.element(publicKey)
        publicKeyBytes = publicKey
    }

    /// §3.3.2 Blind for each input.
    public func blind(_ inputs: [[UInt8]]) throws(TokenCryptoError) -> BlindedBatch {
        try blind(inputs, blinds: inputs.map { _ throws(TokenCryptoError) in try curve.randomScalar() })
    }

    func blind(_ inputs: [[UInt8]], blinds: [Scalar]) throws(TokenCryptoError) -> BlindedBatch {
        guard !inputs.isEmpty, inputs.count == blinds.count, inputs.count <= 0xFFFF else { throw .batchMismatch }
        var blinded: [[UInt8]] = [], points: [Element] = []
        blinded.reserveCapacity(inputs.count)
        points.reserveCapacity(inputs.count)
        for (input, blind) in zip(inputs, blinds) {
            guard input.count <= 0xFFFF else { throw .batchMismatch }
            let point = try curve.multiply(blind, try curve.hashToCurve(input, dst: VOPRFSuite.hashToGroupDST))
            points.append(point)
            blinded.append(try curve.bytes(point))
        }
        return BlindedBatch(inputs: inputs, blinds: blinds, blindedPoints: points, blindedElements: blinded)
    }

    /// §3.3.2 Finalize: verify the batch proof (§2.2.2 VerifyProof), then unblind and hash.
    public func finalize(_ batch: BlindedBatch, evaluated: [[UInt8]], proof: [UInt8]) throws(TokenCryptoError) -> [[UInt8]] {
        guard evaluated.count == batch.blindedElements.count else { throw .batchMismatch }
        guard proof.count == 2 * P256.scalarLength else { throw .invalidProof }
        let evaluatedElements = try evaluated.map { bytes throws(TokenCryptoError) in try curve.element(bytes) }
        let c: Scalar, s: Scalar
        do {
            c = try curve.scalar(proof[0..<32])
            s = try curve.scalar(proof[32..<64])
        } catch { throw .invalidProof }
        let weights = VOPRFSuite.compositeWeights(curve, publicKey: publicKeyBytes, blinded: batch.blindedElements,
                                                  evaluated: evaluated)
        let m = try curve.multiplySum(weights, batch.blindedPoints)
        let z = try curve.multiplySum(weights, evaluatedElements)
        let t2 = try curve.multiplyGenerator(s, plus: c, publicKey)
        let t3 = try curve.multiplySum([s, c], [m, z])
        let expected = VOPRFSuite.challenge(curve, [publicKeyBytes, try curve.bytes(m), try curve.bytes(z),
                                                    try curve.bytes(t2), try curve.bytes(t3)])
        guard curve.bytes(expected) == curve.bytes(c) else { throw .invalidProof }
        let inverses = try curve.inverses(batch.blinds)
        var outputs: [[UInt8]] = []
        outputs.reserveCapacity(evaluated.count)
        for i in evaluated.indices {
            let unblinded = try curve.multiply(inverses[i], evaluatedElements[i])
            let transcript = VOPRFSuite.framed(batch.inputs[i]) + VOPRFSuite.framed(try curve.bytes(unblinded))
                + Array("Finalize".utf8)
            outputs.append(HashToCurve.sha256(transcript))
        }
        return outputs
    }
}
