/// The chunk digests of one blob: the content of its sidecar `blobs/<hh>/<hash>.chunks` (docs/FORMAT.md 3.6).
///
/// A pure function of the payload, so any writer, Swift or Python, produces the same bytes. Little-endian
/// header, big-endian digests (as the blob's own name), and a checksum of everything before it:
///
/// ```
/// 0   8   magic "CASKCHK1"        24  8  payload size         36  1  algorithm (1 = XXH3-64)
/// 8   16  the blob's XXH3-128     32  4  chunk size           37  3  zero
/// 40  8N  XXH3-64 of each chunk   40 + 8N  8  XXH3-64 of bytes [0, 40 + 8N)
/// ```
public struct ChunkDigests: Sendable, Equatable {
    /// The chunk size writers use: a cold window reads little more than itself, even one piece of each
    /// row of a `(channels, time)` array (docs/PERFORMANCE.md 9).
    public static let chunkSize = 64 << 10
    /// The default of `chunks_min` in `casket.json`: blobs of at least this many bytes get a sidecar.
    public static let defaultMinimum: Int64 = 4 << 20
    /// The sidecar's name suffix.
    public static let suffix = ".chunks"
    /// Chunk sizes a reader accepts (powers of two).
    static let acceptedChunkSizes = (4 << 10)...(64 << 20)
    static let magic = Array("CASKCHK1".utf8)
    static let headerLength = 40
    static let algorithmXXH364: UInt8 = 1

    /// The blob.
    public let digest: Digest
    /// The payload size.
    public let size: Int64
    /// The chunk size.
    public let chunkSize: Int
    /// One XXH3-64 per chunk.
    public let digests: [UInt64]

    /// Wraps digests computed by a ``ChunkDigester``.
    public init(digest: Digest, size: Int64, chunkSize: Int = ChunkDigests.chunkSize, digests: [UInt64]) {
        self.digest = digest
        self.size = size
        self.chunkSize = chunkSize
        self.digests = digests
    }

    /// The number of chunks of a payload.
    public static func count(size: Int64, chunkSize: Int) -> Int {
        Int((size + Int64(chunkSize) - 1) / Int64(chunkSize))
    }

    /// The length of the sidecar of a payload.
    static func length(size: Int64, chunkSize: Int) -> Int {
        headerLength + 8 * count(size: size, chunkSize: chunkSize) + 8
    }

    /// The largest sidecar any payload of `size` bytes can have (with the smallest chunk size accepted).
    static func maximumLength(size: Int64) -> Int { length(size: size, chunkSize: acceptedChunkSizes.lowerBound) }

    /// Whether writers give a payload a sidecar: non-empty and at least `minimum` bytes.
    public static func wanted(size: Int64, minimum: Int64) -> Bool { size > 0 && size >= minimum }

    /// The payload bytes of chunk `index`.
    public func range(ofChunk index: Int) -> Range<Int64> {
        let start = Int64(index) * Int64(chunkSize)
        return start..<min(start + Int64(chunkSize), size)
    }

    /// The sidecar's bytes.
    public func encoded() -> [UInt8] {
        var out = ChunkDigests.magic
        out.reserveCapacity(ChunkDigests.length(size: size, chunkSize: chunkSize))
        for word in [digest.high, digest.low] { out += withUnsafeBytes(of: word.bigEndian, Array.init) }
        out += withUnsafeBytes(of: UInt64(size).littleEndian, Array.init)
        out += withUnsafeBytes(of: UInt32(chunkSize).littleEndian, Array.init)
        out += [ChunkDigests.algorithmXXH364, 0, 0, 0]
        for value in digests { out += withUnsafeBytes(of: value.bigEndian, Array.init) }
        let check = out.withUnsafeBytes { ChunkDigester.hash($0) }
        out += withUnsafeBytes(of: check.bigEndian, Array.init)
        return out
    }

    /// Checks a sidecar against its blob.
    ///
    /// - Parameters:
    ///   - bytes: The sidecar file's content.
    ///   - digest: The blob it sits beside.
    ///   - size: The blob's payload size.
    /// - Returns: The digests, or why the sidecar cannot be used (the reader then verifies the blob whole).
    public static func parse(_ bytes: [UInt8], digest: Digest, size: Int64) -> Result<ChunkDigests, Flaw> {
        func word(_ at: Int, _ count: Int, bigEndian: Bool) -> UInt64 {
            var value: UInt64 = 0
            for i in 0..<count {
                let byte = UInt64(bytes[bigEndian ? at + i : at + count - 1 - i])
                value = value << 8 | byte
            }
            return value
        }
        guard bytes.count >= headerLength + 8, Array(bytes[0..<8]) == magic else {
            return .failure(Flaw(bytes.starts(with: magic) ? "it is truncated" : "it does not start with CASKCHK1"))
        }
        let named = Digest(high: word(8, 8, bigEndian: true), low: word(16, 8, bigEndian: true))
        guard named == digest else { return .failure(Flaw("it belongs to blob \(named), not \(digest)")) }
        let declared = word(24, 8, bigEndian: false)
        guard declared == UInt64(size) else {
            return .failure(Flaw("it describes \(declared) payload bytes, the blob holds \(size)"))
        }
        let chunk = Int(word(32, 4, bigEndian: false))
        guard chunk & (chunk - 1) == 0, acceptedChunkSizes.contains(chunk) else {
            return .failure(Flaw("its chunk size \(chunk) is not a power of two from 4096 to 67108864"))
        }
        guard bytes[36] == algorithmXXH364, bytes[37] == 0, bytes[38] == 0, bytes[39] == 0 else {
            return .failure(Flaw("its algorithm \(bytes[36]) is unknown (1 = XXH3-64)"))
        }
        let expected = length(size: size, chunkSize: chunk)
        guard bytes.count == expected else {
            return .failure(Flaw("it holds \(bytes.count) bytes, \(expected) expected"))
        }
        let check = bytes.withUnsafeBytes {
            ChunkDigester.hash(UnsafeRawBufferPointer(rebasing: $0[..<(expected - 8)]))
        }
        guard check == word(expected - 8, 8, bigEndian: true) else {
            return .failure(Flaw("its checksum does not match (damaged)"))
        }
        let digests = (0..<count(size: size, chunkSize: chunk)).map { word(headerLength + 8 * $0, 8, bigEndian: true) }
        return .success(ChunkDigests(digest: digest, size: size, chunkSize: chunk, digests: digests))
    }

    /// Why a sidecar cannot be used.
    public struct Flaw: Error, Sendable, Equatable, CustomStringConvertible {
        /// A phrase about the file ("it is truncated").
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
