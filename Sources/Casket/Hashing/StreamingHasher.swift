import CXXHash

/// Computes an XXH3-128 digest over bytes that arrive in pieces.
///
/// Owns a C `XXH3_state_t`, freed when the hasher goes away. The result equals ``Digest/init(hashing:)``
/// over the concatenated pieces, whatever their sizes.
public struct StreamingHasher: ~Copyable {
    private let state: OpaquePointer

    /// Creates a hasher for the empty input.
    ///
    /// The corresponding C functions are `XXH3_createState` and `XXH3_128bits_reset`.
    public init() {
        guard let state = XXH3_createState() else { fatalError("XXH3_createState: out of memory") }
        XXH3_128bits_reset(state)
        self.state = state
    }

    deinit { XXH3_freeState(state) }

    /// Adds bytes to the input.
    ///
    /// The corresponding C function is `XXH3_128bits_update_dispatch` on x86-64.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        #if arch(x86_64)
        _ = XXH3_128bits_update_dispatch(state, bytes.baseAddress, bytes.count)
        #else
        _ = XXH3_128bits_update(state, bytes.baseAddress, bytes.count)
        #endif
    }

    /// Adds an array of bytes to the input.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest of everything added so far; the hasher can keep going afterwards.
    ///
    /// The corresponding C function is `XXH3_128bits_digest`.
    public func finalize() -> Digest {
        Digest(XXH3_128bits_digest(state))
    }
}
