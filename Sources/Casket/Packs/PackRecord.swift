import CLZ4
import CXXHash

/// One payload in a pack file, as its self-describing header gives it (docs/FORMAT.md 3.7).
///
/// The header names the payload's hash, form and lengths and checks itself, so a pack whose writer was
/// killed can be read and sealed by anyone: nothing about a record lives only in its writer's memory.
public struct PackRecord: Sendable, Equatable {
    /// How the payload's bytes are kept in the record.
    public enum Form: UInt8, Sendable {
        /// The payload itself.
        case raw = 0
        /// One LZ4 block (`LZ4_compress_default`) that decodes to exactly `size` bytes.
        case lz4 = 1
    }

    /// The payload's XXH3-128.
    public var digest: Digest
    /// How the bytes after the header hold the payload.
    public var form: Form
    /// The payload's length.
    public var size: Int64
    /// The length of the bytes after the header.
    public var stored: Int64
    /// Where the record's header starts in its pack.
    public var offset: Int64

    /// A record as a header or an index entry describes it.
    public init(digest: Digest, form: Form, size: Int64, stored: Int64, offset: Int64) {
        self.digest = digest
        self.form = form
        self.size = size
        self.stored = stored
        self.offset = offset
    }

    /// `"CPK1"`.
    static let magic: [UInt8] = Array("CPK1".utf8)
    /// magic 4, hash 16, form 1, size 8, stored 8, header check 4.
    public static let headerSize = 41
    /// The largest payload a record may hold: readers refuse a header that claims more, so a damaged or
    /// hostile pack cannot make them allocate without bound.
    public static let maximumSize: Int64 = 1 << 24

    /// Where the next record starts.
    public var end: Int64 { offset + Int64(PackRecord.headerSize) + stored }

    /// `LZ4_COMPRESSBOUND`: the most an LZ4 block of `size` bytes can take.
    static func compressBound(_ size: Int64) -> Int64 { size + size / 255 + 16 }

    /// The header's 41 bytes.
    @_spi(Maintenance) public func header() -> [UInt8] {
        var bytes: [UInt8] = []
        appendHeader(to: &bytes)
        return bytes
    }

    /// Appends the header's 41 bytes to `bytes`, without an array of its own.
    func appendHeader(to bytes: inout [UInt8]) {
        let start = bytes.count
        bytes.append(contentsOf: PackRecord.magic)
        bytes.appendBigEndian(digest.high)
        bytes.appendBigEndian(digest.low)
        bytes.append(form.rawValue)
        bytes.appendLittleEndian(UInt64(size))
        bytes.appendLittleEndian(UInt64(stored))
        let check = bytes.withUnsafeBytes { XXH32($0.baseAddress! + start, 37, 0) }
        bytes.appendLittleEndian(UInt32(check))
    }

    /// Parses a header at `offset`; `nil` when the bytes are not one (wrong magic, failed check, a form
    /// or lengths no writer produces). A torn or zeroed tail is never taken for a record.
    init?(header bytes: UnsafeRawBufferPointer, offset: Int64) {
        guard bytes.count >= PackRecord.headerSize, bytes.starts(with: PackRecord.magic),
            UInt32(XXH32(bytes.baseAddress, 37, 0)) == bytes.loadLittleEndian(UInt32.self, at: 37),
            let form = Form(rawValue: bytes[20])
        else { return nil }
        let size = Int64(bitPattern: bytes.loadLittleEndian(UInt64.self, at: 21))
        let stored = Int64(bitPattern: bytes.loadLittleEndian(UInt64.self, at: 29))
        guard size >= 0, size <= PackRecord.maximumSize else { return nil }
        switch form {
        case .raw: guard stored == size else { return nil }
        case .lz4: guard size > 0, stored > 0, stored <= PackRecord.compressBound(size) else { return nil }
        }
        self.init(
            digest: Digest(high: bytes.loadBigEndian(at: 4), low: bytes.loadBigEndian(at: 12)), form: form,
            size: size, stored: stored, offset: offset)
    }

    /// Decodes the stored bytes and checks them against the header: the payload, or a description of
    /// what is wrong with them.
    func payload(from stored: UnsafeRawBufferPointer) -> Result<[UInt8], PackFlaw> {
        guard stored.count == Int(self.stored) else { return .failure(.truncated) }
        let bytes: [UInt8]
        switch form {
        case .raw: bytes = Array(stored)
        case .lz4:
            var decoded = [UInt8](repeating: 0, count: Int(size))
            let n = decoded.withUnsafeMutableBytes { out in
                LZ4_decompress_safe(
                    stored.baseAddress!.assumingMemoryBound(to: CChar.self),
                    out.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(stored.count), Int32(size))
            }
            guard n == Int32(size) else { return .failure(.undecodable) }
            bytes = decoded
        }
        let actual = Digest(hashing: bytes)
        guard actual == digest else { return .failure(.hashMismatch(actual)) }
        return .success(bytes)
    }

    /// The record for `payload`, in the form the store's rule gives it (docs/FORMAT.md 3.2: LZ4 only
    /// when `compress` and the block is at most 90 % of the payload), with the bytes to store.
    @_spi(Maintenance) public static func encode(
        _ payload: UnsafeRawBufferPointer, digest: Digest, compress: Bool, offset: Int64
    ) -> (
        PackRecord, [UInt8]
    ) {
        let size = Int64(payload.count)
        if compress && payload.count >= 64 {
            let bound = Int(compressBound(size))
            var block = [UInt8](repeating: 0, count: bound)
            let n = block.withUnsafeMutableBytes { out in
                LZ4_compress_default(
                    payload.baseAddress!.assumingMemoryBound(to: CChar.self),
                    out.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(payload.count), Int32(bound))
            }
            if n > 0 && 10 * Int(n) <= 9 * payload.count {
                block.removeLast(bound - Int(n))
                return (PackRecord(digest: digest, form: .lz4, size: size, stored: Int64(n), offset: offset), block)
            }
        }
        return (PackRecord(digest: digest, form: .raw, size: size, stored: size, offset: offset), Array(payload))
    }
}

extension PackRecord {
    /// Encodes the record for `payload` as ``encode(_:digest:compress:offset:)`` does, appending its
    /// header and stored bytes to `bytes` (a raw payload is copied once, straight into the run).
    static func encode(
        _ payload: UnsafeRawBufferPointer, digest: Digest, compress: Bool, offset: Int64, into bytes: inout [UInt8]
    ) -> PackRecord {
        if compress && payload.count >= 64 {
            let (record, stored) = encode(payload, digest: digest, compress: compress, offset: offset)
            record.appendHeader(to: &bytes)
            bytes.append(contentsOf: stored)
            return record
        }
        let size = Int64(payload.count)
        let record = PackRecord(digest: digest, form: .raw, size: size, stored: size, offset: offset)
        record.appendHeader(to: &bytes)
        bytes.append(contentsOf: payload)
        return record
    }
}

/// What is wrong with a record's bytes.
public enum PackFlaw: Error, Sendable, Equatable, CustomStringConvertible {
    case truncated
    case undecodable
    case hashMismatch(Digest)

    /// What is wrong, as a phrase after "the record ...".
    public var description: String {
        switch self {
        case .truncated: "the pack ends inside the record"
        case .undecodable: "its LZ4 block does not decode to the size its header gives"
        case .hashMismatch(let actual): "its bytes hash to \(actual.hex)"
        }
    }
}
