import CLZ4

/// Compresses a stream into one LZ4 frame (content checksum on, 4 MiB linked blocks).
///
/// Owns an `LZ4F_cctx`, freed on deinit. Output is handed to a sink as it is produced, so memory stays
/// bounded by one block whatever the payload size.
struct LZ4FrameEncoder: ~Copyable {
    private let context: OpaquePointer
    private var preferences: LZ4F_preferences_t
    private var output: UnsafeMutableRawBufferPointer
    private let chunkLimit: Int

    /// The largest input `update` accepts in one call.
    static let maxChunk = 4 << 20

    /// - Parameter contentSize: The payload size when known in advance; written into the frame header.
    init(contentSize: Int64?) throws(CasketError) {
        var context: OpaquePointer?
        let rc = LZ4F_createCompressionContext(&context, UInt32(LZ4F_VERSION))
        guard LZ4F_isError(rc) == 0, let context else { throw LZ4FrameEncoder.error(rc, "create a context") }
        self.context = context
        var preferences = LZ4F_preferences_t()
        preferences.frameInfo.blockSizeID = LZ4F_max4MB
        preferences.frameInfo.blockMode = LZ4F_blockLinked
        preferences.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        preferences.frameInfo.contentSize = UInt64(max(contentSize ?? 0, 0))
        self.preferences = preferences
        self.chunkLimit = LZ4FrameEncoder.maxChunk
        let capacity = max(LZ4F_compressBound(LZ4FrameEncoder.maxChunk, &preferences), Int(LZ4F_HEADER_SIZE_MAX) + 64)
        self.output = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        LZ4F_freeCompressionContext(context)
        output.deallocate()
    }

    static func error(_ code: Int, _ what: String) -> CasketError {
        CasketError(.compression, "LZ4 cannot \(what): \(String(cString: LZ4F_getErrorName(code)))")
    }

    /// Writes the frame header.
    mutating func begin(_ sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void) throws(CasketError) {
        let n = LZ4F_compressBegin(context, output.baseAddress, output.count, &preferences)
        guard LZ4F_isError(n) == 0 else { throw LZ4FrameEncoder.error(n, "begin a frame") }
        try sink(UnsafeRawBufferPointer(rebasing: output[..<n]))
    }

    /// Compresses `input` (any size; split internally).
    mutating func update(
        _ input: UnsafeRawBufferPointer,
        _ sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void
    ) throws(CasketError) {
        var offset = 0
        while offset < input.count {
            let count = min(chunkLimit, input.count - offset)
            let n = LZ4F_compressUpdate(
                context, output.baseAddress, output.count, input.baseAddress! + offset, count, nil)
            guard LZ4F_isError(n) == 0 else { throw LZ4FrameEncoder.error(n, "compress") }
            if n > 0 { try sink(UnsafeRawBufferPointer(rebasing: output[..<n])) }
            offset += count
        }
    }

    /// Flushes buffered data and writes the end mark and content checksum.
    mutating func end(_ sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void) throws(CasketError) {
        let n = LZ4F_compressEnd(context, output.baseAddress, output.count, nil)
        guard LZ4F_isError(n) == 0 else { throw LZ4FrameEncoder.error(n, "end a frame") }
        try sink(UnsafeRawBufferPointer(rebasing: output[..<n]))
    }
}
