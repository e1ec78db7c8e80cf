import CXXHash

/// Checks that a file holds exactly one complete LZ4 frame, without decoding it (docs/FORMAT.md 3.4).
///
/// Reads the frame header, then only the 4-byte header of each block, skipping block data by offset:
/// one small read per block (at most 4 MiB of payload each), so a dedup hit on a large compressed blob
/// stays cheap. What it cannot see without decoding (the bytes inside blocks, the checksum's value) the
/// hash check of every read catches.
struct LZ4FrameWalk {
    /// Why a file is not one complete frame.
    enum Flaw: Error, Equatable, CustomStringConvertible {
        case badMagic
        case badHeader(String)
        case truncated(at: Int64)
        case blockTooLarge(at: Int64, size: Int64, limit: Int64)
        case trailingBytes(from: Int64, fileSize: Int64)

        var description: String {
            switch self {
            case .badMagic: return "it does not start with the LZ4 frame magic"
            case .badHeader(let why): return "its LZ4 frame header is invalid (\(why))"
            case .truncated(let offset): return "its LZ4 frame is truncated at byte \(offset)"
            case .blockTooLarge(let offset, let size, let limit):
                return "the LZ4 block at byte \(offset) declares \(size) bytes, more than the frame's \(limit)"
            case .trailingBytes(let offset, let size):
                return "\(size - offset) bytes follow the end of its LZ4 frame at byte \(offset)"
            }
        }
    }

    /// The decoded size the header declares, if any.
    var contentSize: Int64?

    /// Walks the frame in `io`, a file of `fileSize` bytes.
    ///
    /// - Returns: The walk, or the flaw that makes the file unsound.
    static func walk(_ io: FileRef, fileSize: Int64) throws(CasketError) -> Result<LZ4FrameWalk, Flaw> {
        var header = [UInt8](repeating: 0, count: 19)
        let n = try typed { try header.withUnsafeMutableBytes { try io.pread(into: $0, at: 0) } }
        guard n >= 4, Array(header[0..<4]) == LZ4FrameHeader.magic else { return .failure(.badMagic) }
        guard n >= 7 else { return .failure(.truncated(at: Int64(n))) }
        let flags = header[4]
        let descriptor = header[5]
        guard flags >> 6 == 1 else { return .failure(.badHeader("version \(flags >> 6)")) }
        guard flags & 0x02 == 0, descriptor & 0x8F == 0 else { return .failure(.badHeader("reserved bits set")) }
        // A frame that needs a dictionary cannot be decoded by any reader of the store.
        guard flags & 0x01 == 0 else { return .failure(.badHeader("it needs a dictionary")) }
        let sizeID = Int((descriptor >> 4) & 0x07)
        guard sizeID >= 4 else { return .failure(.badHeader("block size id \(sizeID)")) }
        let blockLimit = Int64(1) << (8 + 2 * sizeID)
        let blockChecksum = flags & 0x10 != 0
        let contentChecksum = flags & 0x04 != 0
        let headerLength = 7 + (flags & 0x08 != 0 ? 8 : 0) + (flags & 0x01 != 0 ? 4 : 0)
        guard n >= headerLength else { return .failure(.truncated(at: Int64(n))) }
        let expected = header.withUnsafeBytes { (bytes) -> UInt8 in
            UInt8(truncatingIfNeeded: XXH32(bytes.baseAddress! + 4, headerLength - 5, 0) >> 8)
        }
        guard header[headerLength - 1] == expected else { return .failure(.badHeader("header checksum")) }
        var walk = LZ4FrameWalk()
        if flags & 0x08 != 0 {
            var size: UInt64 = 0
            for i in 0..<8 { size |= UInt64(header[6 + i]) << (8 * UInt64(i)) }
            guard size <= UInt64(Int64.max) else { return .failure(.badHeader("content size \(size)")) }
            walk.contentSize = Int64(size)
        }
        var offset = Int64(headerLength)
        var word = [UInt8](repeating: 0, count: 4)
        while true {
            let got = try typed { try word.withUnsafeMutableBytes { try io.pread(into: $0, at: offset) } }
            guard got == 4 else { return .failure(.truncated(at: offset + Int64(got))) }
            let value = UInt32(word[0]) | UInt32(word[1]) << 8 | UInt32(word[2]) << 16 | UInt32(word[3]) << 24
            let size = Int64(value & 0x7FFF_FFFF)
            // liblz4 reads a size of 0 (whatever the uncompressed bit) as the end mark.
            if size == 0 { break }
            guard size <= blockLimit else {
                return .failure(.blockTooLarge(at: offset, size: size, limit: blockLimit))
            }
            offset += 4 + size + (blockChecksum ? 4 : 0)
            guard offset <= fileSize else { return .failure(.truncated(at: fileSize)) }
        }
        offset += 4 + (contentChecksum ? 4 : 0)
        guard offset <= fileSize else { return .failure(.truncated(at: fileSize)) }
        guard offset == fileSize else { return .failure(.trailingBytes(from: offset, fileSize: fileSize)) }
        return .success(walk)
    }
}
