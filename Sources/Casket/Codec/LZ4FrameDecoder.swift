import CLZ4

/// Decodes one LZ4 frame fed in pieces, handing decoded bytes to a sink.
///
/// Owns an `LZ4F_dctx`, freed on deinit.
struct LZ4FrameDecoder: ~Copyable {
    private let context: OpaquePointer
    private let output: UnsafeMutableRawBufferPointer
    /// True once the frame's end mark (and checksum) has been read and checked.
    private(set) var finished = false

    init() throws(CasketError) {
        var context: OpaquePointer?
        let rc = LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))
        guard LZ4F_isError(rc) == 0, let context else { throw LZ4FrameEncoder.error(rc, "create a context") }
        self.context = context
        self.output = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 16)
    }

    deinit {
        LZ4F_freeDecompressionContext(context)
        output.deallocate()
    }

    /// Decodes `input`. Throws on malformed data or a checksum mismatch; bytes after the frame are an error.
    mutating func update(
        _ input: UnsafeRawBufferPointer,
        _ sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void
    ) throws(CasketError) {
        var consumed = 0
        while consumed < input.count {
            if finished { throw CasketError(.corrupt, "data follows the end of the LZ4 frame") }
            var srcSize = input.count - consumed
            var dstSize = output.count
            let hint = LZ4F_decompress(
                context, output.baseAddress, &dstSize, input.baseAddress! + consumed, &srcSize, nil)
            guard LZ4F_isError(hint) == 0 else { throw LZ4FrameEncoder.error(hint, "decode the frame") }
            consumed += srcSize
            if dstSize > 0 { try sink(UnsafeRawBufferPointer(rebasing: output[..<dstSize])) }
            if hint == 0 { finished = true }
        }
    }

    /// Drains output still held by the decoder after all input has been given.
    mutating func flush(_ sink: (UnsafeRawBufferPointer) throws(CasketError) -> Void) throws(CasketError) {
        while !finished {
            var srcSize = 0
            var dstSize = output.count
            let hint = LZ4F_decompress(context, output.baseAddress, &dstSize, nil, &srcSize, nil)
            guard LZ4F_isError(hint) == 0 else { throw LZ4FrameEncoder.error(hint, "decode the frame") }
            if dstSize > 0 { try sink(UnsafeRawBufferPointer(rebasing: output[..<dstSize])) }
            if hint == 0 { finished = true }
            if dstSize == 0 { break }
        }
    }
}

/// The parts of an LZ4 frame header that a store needs without decoding the frame.
struct LZ4FrameHeader {
    static let magic: [UInt8] = [0x04, 0x22, 0x4D, 0x18]
    /// The decoded size, when the writer recorded it.
    var contentSize: Int64?

    /// Parses the first bytes of a frame; `nil` when they are not an LZ4 frame header.
    init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 7, Array(bytes[0..<4]) == LZ4FrameHeader.magic else { return nil }
        let flags = bytes[4]
        guard flags >> 6 == 1 else { return nil }  // version 01
        if flags & 0x08 != 0 {
            guard bytes.count >= 14 else { return nil }
            var size: UInt64 = 0
            for i in 0..<8 { size |= UInt64(bytes[6 + i]) << (8 * UInt64(i)) }
            contentSize = Int64(clamping: size)
        } else {
            contentSize = nil
        }
    }
}
