import CXXHash

/// An XXH3-128 digest: the identity of a payload in a Casket store.
///
/// Its text form is the canonical big-endian rendering of `XXH128_canonicalFromHash` in lowercase hex,
/// the same as `xxhsum -H2` and Python's `xxhash.xxh3_128_hexdigest`.
public struct Digest: Hashable, Sendable, Comparable {
    /// The high 64 bits (printed first).
    public let high: UInt64
    /// The low 64 bits.
    public let low: UInt64

    /// Creates a digest from its two halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    init(_ hash: XXH128_hash_t) {
        self.init(high: hash.high64, low: hash.low64)
    }

    /// Hashes a buffer in one call.
    ///
    /// On x86-64 this calls the `_dispatch` entry point, which picks the widest vector unit at run time.
    /// The corresponding C function is `XXH3_128bits_dispatch`.
    public init(hashing bytes: UnsafeRawBufferPointer) {
        #if arch(x86_64)
        self.init(XXH3_128bits_dispatch(bytes.baseAddress, bytes.count))
        #else
        self.init(XXH3_128bits(bytes.baseAddress, bytes.count))
        #endif
    }

    /// Hashes an array of bytes in one call.
    public init(hashing bytes: [UInt8]) {
        self = bytes.withUnsafeBytes { Digest(hashing: $0) }
    }

    /// The digest of the empty payload, `99aa06d3014798d86001c324468d497f`.
    public static let empty = Digest(hashing: [])

    /// Orders digests by their canonical text form.
    public static func < (lhs: Digest, rhs: Digest) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}
