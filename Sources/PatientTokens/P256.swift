import CGatewayShims
import COpenSSL

/// Why a token operation failed. It never carries an input: inputs are identifiers.
public enum TokenCryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not a 33-byte compressed P-256 point, not on the curve, or the identity.
    case invalidElement
    /// Not a 32-byte big-endian integer in [1, order).
    case invalidScalar
    /// The DLEQ proof does not verify against the public key the caller trusts.
    case invalidProof
    /// Lists that must pair up (inputs, blinded, evaluated) have different lengths, or are empty.
    case batchMismatch
    /// OpenSSL refused an operation (in practice: out of memory).
    case openSSL(String)

    public var description: String {
        switch self {
        case .invalidElement: "not a valid compressed P-256 element"
        case .invalidScalar: "not a valid P-256 scalar"
        case .invalidProof: "the evaluation proof does not verify against the pinned public key"
        case .batchMismatch: "the batch lists are empty or of different lengths"
        case .openSSL(let call): "OpenSSL call \(call) failed"
        }
    }
}

/// A P-256 point owned by Swift; freed with its owner. Hazard, for this type and `Scalar`:
/// read `.point` / `.bn` only from an owner bound to a name. ARC may free a temporary right
/// after the property read, before OpenSSL uses the pointer.
final class Element {
    let point: OpaquePointer
    init(_ point: OpaquePointer) { self.point = point }
    deinit { EC_POINT_free(point) }
}

/// A scalar modulo the group order. Secret ones carry BN_FLG_CONSTTIME and are cleared on free.
final class Scalar {
    let bn: OpaquePointer
    init(_ bn: OpaquePointer) { self.bn = bn }
    deinit { BN_clear_free(bn) }
}

/// P-256 through OpenSSL's EC and BIGNUM API: the group, a BN_CTX, scalars modulo the
/// order, and the prime field (`P256Field`) for decoding points and hashing to the curve. A BN_CTX is scratch memory and may not be shared, so an
/// instance belongs to one thread at a time; callers keep one per worker.
///
/// What must stay true: secret scalars (the server key, a client's blinds) only reach
/// EC_POINT_mul (OpenSSL 3's constant-time P-256 ladder), BN_mod_exp_mont_consttime and
/// Montgomery multiplication. Everything variable-time here (hash-to-curve, the composite
/// multi-scalar multiplication, point decoding) handles public or per-batch random values.
final class P256 {
    static let elementLength = 33
    static let scalarLength = 32

    let group: OpaquePointer
    let ctx: OpaquePointer
    let order: OpaquePointer
    private let orderMinusTwo: OpaquePointer
    private let orderMont: OpaquePointer
    private let field: P256Field

    init() throws(TokenCryptoError) {
        guard let group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1), let ctx = BN_CTX_new(),
              let order = EC_GROUP_get0_order(group)
        else { throw .openSSL("EC_GROUP_new_by_curve_name") }
        self.group = group
        self.ctx = ctx
        self.order = order
        field = P256Field(group: group, ctx: ctx)
        orderMinusTwo = BN_dup(order)!
        BN_sub_word(orderMinusTwo, 2)
        orderMont = BN_MONT_CTX_new()!
        BN_MONT_CTX_set(orderMont, order, ctx)
    }

    deinit {
        BN_free(orderMinusTwo)
        BN_MONT_CTX_free(orderMont)
        BN_CTX_free(ctx)
        EC_GROUP_free(group)
    }

    // MARK: encoding (RFC 9497 §4.3: compressed SEC1 elements, 32-byte big-endian scalars)

    func element(_ bytes: some Collection<UInt8>) throws(TokenCryptoError) -> Element {
        let bytes = Array(bytes)
        guard bytes.count == Self.elementLength, bytes[0] == 2 || bytes[0] == 3 else { throw .invalidElement }
        return try field.decompress(bytes, into: newPoint())
    }

    func bytes(_ element: Element) throws(TokenCryptoError) -> [UInt8] {
        guard EC_POINT_is_at_infinity(group, element.point) == 0 else { throw .invalidElement }
        var out = [UInt8](repeating: 0, count: Self.elementLength)
        guard EC_POINT_point2oct(group, element.point, POINT_CONVERSION_COMPRESSED, &out, out.count, ctx)
            == Self.elementLength
        else { throw .openSSL("EC_POINT_point2oct") }
        return out
    }

    func scalar(_ bytes: some Collection<UInt8>, secret: Bool = false) throws(TokenCryptoError) -> Scalar {
        let bytes = Array(bytes)
        guard bytes.count == Self.scalarLength else { throw .invalidScalar }
        let s = newScalar(secret: secret)
        BN_bin2bn(bytes, Int32(bytes.count), s.bn)
        guard BN_is_zero(s.bn) == 0, BN_cmp(s.bn, order) < 0 else { throw .invalidScalar }
        return s
    }

    func bytes(_ scalar: Scalar) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.scalarLength)
        BN_bn2binpad(scalar.bn, &out, Int32(out.count))
        return out
    }

    // MARK: arithmetic

    func newPoint() -> Element { Element(EC_POINT_new(group)!) }

    func newScalar(secret: Bool = false) -> Scalar {
        let s = Scalar(BN_secure_new()!)
        if secret { BN_set_flags(s.bn, BN_FLG_CONSTTIME) }
        return s
    }

    /// A uniformly random nonzero scalar from OpenSSL's private DRBG.
    func randomScalar() throws(TokenCryptoError) -> Scalar {
        let s = newScalar(secret: true)
        repeat {
            guard BN_priv_rand_range(s.bn, order) == 1 else { throw .openSSL("BN_priv_rand_range") }
        } while BN_is_zero(s.bn) == 1
        return s
    }

    /// k·P through EC_POINT_mul, constant time in k.
    func multiply(_ k: Scalar, _ p: Element) throws(TokenCryptoError) -> Element {
        let r = newPoint()
        guard EC_POINT_mul(group, r.point, nil, p.point, k.bn, ctx) == 1 else { throw .openSSL("EC_POINT_mul") }
        return r
    }

    /// k·G, the fixed-base path.
    func multiplyGenerator(_ k: Scalar) throws(TokenCryptoError) -> Element {
        let r = newPoint()
        guard EC_POINT_mul(group, r.point, k.bn, nil, nil, ctx) == 1 else { throw .openSSL("EC_POINT_mul") }
        return r
    }

    /// a·G + b·P in one pass: the proof's t2 when P is the public key. Public scalars only.
    func multiplyGenerator(_ a: Scalar, plus b: Scalar, _ p: Element) throws(TokenCryptoError) -> Element {
        let r = newPoint()
        guard EC_POINT_mul(group, r.point, a.bn, p.point, b.bn, ctx) == 1 else { throw .openSSL("EC_POINT_mul") }
        return r
    }

    /// Σ kᵢ·Pᵢ by interleaved multi-scalar multiplication. Variable time: public scalars only.
    func multiplySum(_ scalars: [Scalar], _ points: [Element]) throws(TokenCryptoError) -> Element {
        let r = newPoint()
        let pointPointers: [OpaquePointer?] = points.map { Optional($0.point) }
        let scalarPointers: [OpaquePointer?] = scalars.map { Optional($0.bn) }
        let ok = pointPointers.withUnsafeBufferPointer { p in
            scalarPointers.withUnsafeBufferPointer { s in
                gw_ec_points_mul(group, r.point, points.count, p.baseAddress, s.baseAddress, ctx)
            }
        }
        guard ok == 1 else { throw .openSSL("EC_POINTs_mul") }
        return r
    }

    func add(_ a: Element, _ b: Element) throws(TokenCryptoError) -> Element {
        let r = newPoint()
        guard EC_POINT_add(group, r.point, a.point, b.point, ctx) == 1 else { throw .openSSL("EC_POINT_add") }
        return r
    }

    /// r − c·k mod order, k secret: c·k by Montgomery multiplication, then a reduced subtraction.
    func proofResponse(r: Scalar, c: Scalar, k: Scalar) throws(TokenCryptoError) -> Scalar {
        let cMont = newScalar(), product = newScalar(secret: true), s = newScalar(secret: true)
        guard BN_to_montgomery(cMont.bn, c.bn, orderMont, ctx) == 1,
              BN_mod_mul_montgomery(product.bn, cMont.bn, k.bn, orderMont, ctx) == 1,
              BN_mod_sub_quick(s.bn, r.bn, product.bn, order) == 1
        else { throw .openSSL("BN_mod_mul_montgomery") }
        return s
    }

    /// k⁻¹ mod order by Fermat's little theorem in constant time (the order is prime).
    func inverse(_ k: Scalar) throws(TokenCryptoError) -> Scalar {
        let r = newScalar(secret: true)
        guard BN_mod_exp_mont_consttime(r.bn, k.bn, orderMinusTwo, order, ctx, orderMont) == 1 else {
            throw .openSSL("BN_mod_exp_mont_consttime")
        }
        return r
    }

    /// Every kᵢ⁻¹ with one constant-time inversion (Montgomery's trick): prefix products,
    /// invert the total, walk back. Products stay in Montgomery form throughout.
    func inverses(_ ks: [Scalar]) throws(TokenCryptoError) -> [Scalar] {
        guard !ks.isEmpty else { return [] }
        let mont = ks.map { _ in newScalar(secret: true) }
        var prefix: [Scalar] = []
        prefix.reserveCapacity(ks.count)
        for (k, m) in zip(ks, mont) {
            guard BN_to_montgomery(m.bn, k.bn, orderMont, ctx) == 1 else { throw .openSSL("BN_to_montgomery") }
            let p = newScalar(secret: true)
            if let last = prefix.last {
                BN_mod_mul_montgomery(p.bn, last.bn, m.bn, orderMont, ctx)
            } else {
                BN_copy(p.bn, m.bn)
            }
            prefix.append(p)
        }
        let total = newScalar(secret: true)
        BN_from_montgomery(total.bn, prefix[prefix.count - 1].bn, orderMont, ctx)
        let totalInverse = try inverse(total)
        let running = newScalar(secret: true)
        BN_to_montgomery(running.bn, totalInverse.bn, orderMont, ctx)
        var out: [Scalar] = []
        out.reserveCapacity(ks.count)
        for i in stride(from: ks.count - 1, through: 0, by: -1) {
            let r = newScalar(secret: true)
            if i > 0 {
                BN_mod_mul_montgomery(r.bn, running.bn, prefix[i - 1].bn, orderMont, ctx)
                BN_mod_mul_montgomery(running.bn, running.bn, mont[i].bn, orderMont, ctx)
            } else {
                BN_copy(r.bn, running.bn)
            }
            BN_from_montgomery(r.bn, r.bn, orderMont, ctx)
            out.append(r)
        }
        return out.reversed()
    }


    // MARK: RFC 9380

    /// hash_to_field for the scalar field, count 1, L = 48: RFC 9497 §4.3's HashToScalar.
    func hashToScalar(_ message: [UInt8], dst: [UInt8]) -> Scalar {
        let uniform = HashToCurve.expandMessageXMD(message, dst: dst, length: 48)
        let s = newScalar()
        BN_bin2bn(uniform, 48, s.bn)
        BN_nnmod(s.bn, s.bn, order, ctx)
        return s
    }

    /// hash_to_curve, suite P256_XMD:SHA-256_SSWU_RO_ (RFC 9380 §3, §8.2): two field
    /// elements, each mapped by simplified SWU, added; P-256's cofactor is 1.
    func hashToCurve(_ message: [UInt8], dst: [UInt8]) throws(TokenCryptoError) -> Element {
        let uniform = HashToCurve.expandMessageXMD(message, dst: dst, length: 96)
        let q0 = try field.mapToCurve(uniform[0..<48], into: newPoint())
        let q1 = try field.mapToCurve(uniform[48..<96], into: newPoint())
        let r = try add(q0, q1)
        guard EC_POINT_is_at_infinity(group, r.point) == 0 else { throw .invalidElement }
        return r
    }
}
