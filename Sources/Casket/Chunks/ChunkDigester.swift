import CXXHash

/// Computes the XXH3-64 digest of each fixed-size chunk of a payload that arrives in pieces of any size.
///
/// Fed in the same pass that computes the payload's XXH3-128 (docs/FORMAT.md 3.6), so chunk digests cost
/// no extra read. Owns a C `XXH3_state_t` for a chunk cut across two pieces (a class, so that the
/// put paths can pass one along or not).
public final class ChunkDigester {
    /// The chunk size, in bytes.
    public let chunkSize: Int
    /// The digests of the chunks completed so far.
    public private(set) var digests: [UInt64] = []
    private let state: OpaquePointer
    private var filled = 0

    /// Creates a digester for the empty input.
    ///
    /// - Parameter chunkSize: The chunk size (default: what writers use, ``ChunkDigests/chunkSize``).
    public init(chunkSize: Int = ChunkDigests.chunkSize) {
        guard let state = XXH3_createState() else { fatalError("XXH3_createState: out of memory") }
        XXH3_64bits_reset(state)
        self.state = state
        self.chunkSize = chunkSize
    }

    deinit { XXH3_freeState(state) }

    /// Adds bytes to the input.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        var position = 0
        while position < bytes.count {
            let take = min(chunkSize - filled, bytes.count - position)
            let piece = UnsafeRawBufferPointer(rebasing: bytes[position..<position + take])
            if take == chunkSize {
                digests.append(ChunkDigester.hash(piece))
            } else {
                #if arch(x86_64)
                _ = XXH3_64bits_update_dispatch(state, piece.baseAddress, piece.count)
                #else
                _ = XXH3_64bits_update(state, piece.baseAddress, piece.count)
                #endif
                filled += take
                if filled == chunkSize { closeChunk() }
            }
            position += take
        }
    }

    private func closeChunk() {
        digests.append(XXH3_64bits_digest(state))
        XXH3_64bits_reset(state)
        filled = 0
    }

    /// The digests of every chunk, the last one short when the size is not a multiple of the chunk size.
    public func finish() -> [UInt64] {
        if filled > 0 { closeChunk() }
        return digests
    }

    /// XXH3-64 (seed 0) of a buffer in one call.
    ///
    /// The corresponding C function is `XXH3_64bits_dispatch` on x86-64.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        #if arch(x86_64)
        XXH3_64bits_dispatch(bytes.baseAddress, bytes.count)
        #else
        XXH3_64bits(bytes.baseAddress, bytes.count)
        #endif
    }
}
