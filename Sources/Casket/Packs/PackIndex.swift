import CXXHash

/// A sealed pack's index, `packs/<id>.idx` (docs/FORMAT.md 3.8), searched through a read-only mapping.
///
/// Nothing is loaded: a lookup reads the fan-out table and binary-searches the entries of one first
/// byte, so a reader of ten million packed payloads keeps no table of them in memory.
public final class PackIndex: Sendable {
    /// `"CPI1"`.
    static let magic: [UInt8] = Array("CPI1".utf8)
    /// magic 4, count 4, covered 8, fan-out 256 x 4.
    static let headerSize = 16 + 256 * 4
    /// hash 16, offset 8, stored 8, size 8, form 1.
    static let entrySize = 41
    static let trailerSize = 8

    private let file: MappedFile
    /// How many records it lists.
    public let count: Int
    /// How many leading bytes of the pack it describes; nothing after them is ever read.
    public let covered: Int64

    /// Maps and checks an index file: its length, magic, trailer checksum, fan-out table and order.
    ///
    /// - Throws: ``CasketError/Code/corrupt`` naming the file and what is wrong.
    init(_ io: FileRef, length: Int64) throws(CasketError) {
        func corrupt(_ what: String) -> CasketError {
            CasketError(.corrupt, "pack index '\(io.path)' is damaged: \(what)", path: io.path)
        }
        guard length >= Int64(PackIndex.headerSize + PackIndex.trailerSize), length <= Int64(Int32.max) else {
            throw corrupt("it is \(length) bytes long")
        }
        file = try MappedFile(io, length: Int(length))
        let bytes = file.bytes
        guard bytes.starts(with: PackIndex.magic) else { throw corrupt("it does not start with CPI1") }
        count = Int(bytes.loadLittleEndian(UInt32.self, at: 4))
        covered = Int64(bitPattern: bytes.loadLittleEndian(UInt64.self, at: 8))
        guard Int(length) == PackIndex.headerSize + count * PackIndex.entrySize + PackIndex.trailerSize else {
            throw corrupt("it is \(length) bytes long for \(count) entries")
        }
        let body = Int(length) - PackIndex.trailerSize
        guard XXH3_64bits(bytes.baseAddress, body) == bytes.loadLittleEndian(UInt64.self, at: body) else {
            throw corrupt("its checksum does not match")
        }
        var previous: UInt32 = 0
        for slot in 0..<256 {
            let value = bytes.loadLittleEndian(UInt32.self, at: 16 + 4 * slot)
            guard value >= previous else { throw corrupt("its fan-out table decreases at \(slot)") }
            previous = value
        }
        guard Int(previous) == count, covered >= 0 else { throw corrupt("its fan-out table ends at \(previous)") }
        var last: Digest? = nil
        for index in 0..<count {
            let record = entry(index)
            let slot = Int(record.digest.high >> 56)
            guard index >= (slot == 0 ? 0 : Int(fanout(slot - 1))), index < Int(fanout(slot)) else {
                throw corrupt("entry \(index) is outside its fan-out range")
            }
            if let last, !(last < record.digest) { throw corrupt("entry \(index) is out of order") }
            guard record.offset >= 0, record.end <= covered, record.size <= PackRecord.maximumSize else {
                throw corrupt("entry \(index) lies outside the \(covered) bytes it covers")
            }
            last = record.digest
        }
    }

    private func fanout(_ slot: Int) -> UInt32 { file.bytes.loadLittleEndian(UInt32.self, at: 16 + 4 * slot) }

    /// The `index`-th entry, in hash order.
    public func entry(_ index: Int) -> PackRecord {
        let bytes = file.bytes
        let at = PackIndex.headerSize + index * PackIndex.entrySize
        return PackRecord(
            digest: Digest(high: bytes.loadBigEndian(at: at), low: bytes.loadBigEndian(at: at + 8)),
            form: PackRecord.Form(rawValue: bytes[at + 40]) ?? .raw,
            size: Int64(bitPattern: bytes.loadLittleEndian(UInt64.self, at: at + 32)),
            stored: Int64(bitPattern: bytes.loadLittleEndian(UInt64.self, at: at + 24)),
            offset: Int64(bitPattern: bytes.loadLittleEndian(UInt64.self, at: at + 16)))
    }

    /// The first 8 bytes of the `index`-th entry's hash (``PackDirectory``).
    func high(_ index: Int) -> UInt64 {
        file.bytes.loadBigEndian(at: PackIndex.headerSize + index * PackIndex.entrySize)
    }

    /// The record of `digest`, or `nil`.
    public func lookup(_ digest: Digest) -> PackRecord? {
        let slot = Int(digest.high >> 56)
        var low = slot == 0 ? 0 : Int(fanout(slot - 1))
        var high = Int(fanout(slot))
        let bytes = file.bytes
        while low < high {
            let middle = (low + high) / 2
            let at = PackIndex.headerSize + middle * PackIndex.entrySize
            let found = Digest(high: bytes.loadBigEndian(at: at), low: bytes.loadBigEndian(at: at + 8))
            if found == digest { return entry(middle) }
            if found < digest { low = middle + 1 } else { high = middle }
        }
        return nil
    }

    /// The index file's bytes for `records` of a pack whose first `covered` bytes they describe: entries
    /// sorted by hash, the first record of a hash only. Every implementation writes the same bytes for
    /// the same records.
    static func encode(_ records: [PackRecord], covered: Int64) -> [UInt8] {
        var unique: [Digest: PackRecord] = [:]
        for record in records where unique[record.digest].map({ record.offset < $0.offset }) ?? true {
            unique[record.digest] = record
        }
        let sorted = unique.values.sorted { $0.digest < $1.digest }
        var bytes = PackIndex.magic
        bytes.reserveCapacity(headerSize + sorted.count * entrySize + trailerSize)
        bytes.appendLittleEndian(UInt32(sorted.count))
        bytes.appendLittleEndian(UInt64(covered))
        var counts = [UInt32](repeating: 0, count: 256)
        for record in sorted { counts[Int(record.digest.high >> 56)] += 1 }
        var running: UInt32 = 0
        for slot in 0..<256 {
            running += counts[slot]
            bytes.appendLittleEndian(running)
        }
        for record in sorted {
            bytes.appendBigEndian(record.digest.high)
            bytes.appendBigEndian(record.digest.low)
            bytes.appendLittleEndian(UInt64(record.offset))
            bytes.appendLittleEndian(UInt64(record.stored))
            bytes.appendLittleEndian(UInt64(record.size))
            bytes.append(record.form.rawValue)
        }
        let check = bytes.withUnsafeBytes { XXH3_64bits($0.baseAddress, $0.count) }
        bytes.appendLittleEndian(UInt64(check))
        return bytes
    }
}
