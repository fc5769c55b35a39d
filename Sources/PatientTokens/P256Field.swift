import COpenSSL

/// GF(p) for P-256: decoding compressed points and RFC 9380's simplified SWU map, each
/// with one modular exponentiation. OpenSSL's own decoder (BN_mod_sqrt) builds a
/// Montgomery context on every call and the straightforward SWU tries two square roots;
/// here p's context is built once and the second root is derived from the first.
///
/// Every value handled here is public or a hash of the input, never a secret scalar.
/// Shares its owner's BN_CTX, so it lives on its owner's thread.
final class P256Field {
    private let group: OpaquePointer
    private let ctx: OpaquePointer
    private let p: OpaquePointer
    private let b: OpaquePointer
    private let montP: OpaquePointer
    /// (p + 1) / 4: p ≡ 3 (mod 4), so a^((p+1)/4) is √a whenever a is a square.
    private let sqrtExponent: OpaquePointer
    /// RFC 9380 §8.2: Z = −10; §6.6.2: c1 = −B/A = B/3, c2 = B/(Z·A) = B/30.
    private let z: OpaquePointer
    private let c1: OpaquePointer
    private let c2: OpaquePointer
    /// √(−Z³) = √1000: when g(x1) is not a square, a^((p+1)/4) gives √(−g(x1)), and
    /// u³·√(−Z³)·√(−g(x1)) is √(g(x2)) because g(x2) = Z³u⁶·g(x1).
    private let c3: OpaquePointer

    init(group: OpaquePointer, ctx: OpaquePointer) {
        self.group = group
        self.ctx = ctx
        p = BN_new()!
        b = BN_new()!
        let a = BN_new()!
        defer { BN_free(a) }
        EC_GROUP_get_curve(group, p, a, b, ctx)
        montP = BN_MONT_CTX_new()!
        BN_MONT_CTX_set(montP, p, ctx)
        sqrtExponent = BN_dup(p)!
        BN_add_word(sqrtExponent, 1)
        BN_rshift(sqrtExponent, sqrtExponent, 2)
        z = BN_new()!
        BN_set_word(z, 10)
        BN_sub(z, p, z)
        c1 = BN_new()!
        c2 = BN_new()!
        c3 = BN_new()!
        let t = BN_new()!
        defer { BN_free(t) }
        BN_set_word(t, 3)
        BN_mod_inverse(t, t, p, ctx)
        BN_mod_mul(c1, b, t, p, ctx)
        BN_set_word(t, 30)
        BN_mod_inverse(t, t, p, ctx)
        BN_mod_mul(c2, b, t, p, ctx)
        BN_set_word(t, 1000)
        let isSquare = squareRoot(c3, t)
        precondition(isSquare, "1000 is a square modulo the P-256 prime")
    }

    deinit {
        for bn in [p, b, sqrtExponent, z, c1, c2, c3] { BN_free(bn) }
        BN_MONT_CTX_free(montP)
    }

    /// r = √a and true when a is a square; otherwise r = √(−a) and false (p ≡ 3 mod 4).
    private func squareRoot(_ r: OpaquePointer, _ a: OpaquePointer) -> Bool {
        BN_CTX_start(ctx)
        defer { BN_CTX_end(ctx) }
        let check = BN_CTX_get(ctx)!
        BN_mod_exp_mont(r, a, sqrtExponent, p, ctx, montP)
        BN_mod_sqr(check, r, p, ctx)
        return BN_cmp(check, a) == 0
    }

    /// g(x) = x³ − 3x + B.
    private func curve(_ out: OpaquePointer, _ x: OpaquePointer) {
        BN_CTX_start(ctx)
        defer { BN_CTX_end(ctx) }
        let t = BN_CTX_get(ctx)!
        BN_mod_sqr(t, x, p, ctx)
        BN_sub_word(t, 3)
        BN_mod_mul(out, t, x, p, ctx)
        BN_mod_add(out, out, b, p, ctx)
    }

    /// (x, y) with y's parity set to `odd`, checked on the curve by OpenSSL.
    private func point(x: OpaquePointer, y: OpaquePointer, odd: Bool,
                       into point: Element) throws(TokenCryptoError) -> Element {
        if (BN_is_odd(y) == 1) != odd && BN_is_zero(y) == 0 { BN_sub(y, p, y) }
        guard EC_POINT_set_affine_coordinates(group, point.point, x, y, ctx) == 1 else {
            ERR_clear_error()
            throw .invalidElement
        }
        return point
    }

    /// SEC1 compressed form, 33 bytes: prefix 02 (y even) or 03 (y odd), then x.
    func decompress(_ bytes: [UInt8], into result: Element) throws(TokenCryptoError) -> Element {
        BN_CTX_start(ctx)
        defer { BN_CTX_end(ctx) }
        let x = BN_CTX_get(ctx)!, g = BN_CTX_get(ctx)!, y = BN_CTX_get(ctx)!
        bytes.withUnsafeBufferPointer { _ = BN_bin2bn($0.baseAddress! + 1, 32, x) }
        guard BN_cmp(x, p) < 0 else { throw .invalidElement }
        curve(g, x)
        guard squareRoot(y, g) else { throw .invalidElement }
        return try point(x: x, y: y, odd: bytes[0] == 3, into: result)
    }

    /// RFC 9380 §6.6.2 simplified SWU for one field element u (48 bytes of
    /// expand_message_xmd, reduced mod p), with sgn0(y) = sgn0(u) (§4.1: parity for m = 1).
    func mapToCurve(_ bytes: ArraySlice<UInt8>, into result: Element) throws(TokenCryptoError) -> Element {
        BN_CTX_start(ctx)
        defer { BN_CTX_end(ctx) }
        let u = BN_CTX_get(ctx)!, zu2 = BN_CTX_get(ctx)!, den = BN_CTX_get(ctx)!
        let x = BN_CTX_get(ctx)!, g = BN_CTX_get(ctx)!, y = BN_CTX_get(ctx)!
        let input = Array(bytes)
        BN_bin2bn(input, Int32(input.count), u)
        BN_nnmod(u, u, p, ctx)
        // tv1 = 1 / (Z²u⁴ + Z·u²); x1 = c1·(1 + tv1), or c2 when the denominator is 0.
        BN_mod_sqr(zu2, u, p, ctx)
        BN_mod_mul(zu2, zu2, z, p, ctx)
        BN_mod_sqr(den, zu2, p, ctx)
        BN_mod_add(den, den, zu2, p, ctx)
        if BN_is_zero(den) == 1 {
            BN_copy(x, c2)
        } else {
            guard BN_mod_inverse(den, den, p, ctx) != nil else { throw .openSSL("BN_mod_inverse") }
            BN_add_word(den, 1)
            BN_mod_mul(x, c1, den, p, ctx)
        }
        curve(g, x)
        if !squareRoot(y, g) {
            // x2 = Z·u²·x1, y2 = u³·√(−Z³)·√(−g(x1)).
            BN_mod_mul(x, zu2, x, p, ctx)
            BN_mod_sqr(den, u, p, ctx)
            BN_mod_mul(den, den, u, p, ctx)
            BN_mod_mul(y, y, den, p, ctx)
            BN_mod_mul(y, y, c3, p, ctx)
        }
        return try point(x: x, y: y, odd: BN_is_odd(u) == 1, into: result)
    }
}
