/// Every key's winner as a reader of the store needs it (docs/DESIGN.md 3.5): what the winner rule
/// compares (docs/FORMAT.md 5.4), where the winning line is, and what `ls` and `stat` print, but not
/// the value tree, which is parsed again from the line when the key is read.
///
/// Flat arrays, like ``MarkTable``: the keys in a ``KeyIndex``, one 80-byte record a key at the key's
/// number, in chunks that never move, writer ids, file names and value types stored once. About 110 bytes a key plus the key's bytes, where a dictionary of whole entries took about 650.
struct WinnerTable {
    /// Where a winning line is, and what it must be when read again: an index file can be folded away
    /// or replaced between the read that found the line and the read of the line itself.
    struct Location: Equatable {
        /// The reader's number of the index file (``IndexReader``'s file list).
        var file: UInt32
        /// The byte offset of the line in that file.
        var offset: Int64
        /// The line's length, without its `\n`.
        var length: Int
        /// The line's hash (this process's seed).
        var check: UInt32
    }

    /// A key's winner without its value tree.
    struct Winner {
        var timestamp: Int64
        var writer: String
        var line: Int
        var isDeleted: Bool
        /// Blob and inline payload bytes (``IndexEntry/payloadBytes``).
        var payloadBytes: Int64
        /// The number of blobs the line lists.
        var blobCount: Int
        /// The value's `#type`, empty if it has none or is a tombstone.
        var type: String
        var location: Location
    }

    /// One key's winner. `count` is the number of blobs, -1 for a tombstone; the first blob is inline,
    /// more in ``WinnerTable/more``.
    private struct Record {
        var timestamp: Int64
        var line: Int
        var offset: Int64
        var payloadBytes: Int64
        var firstSize: Int64
        var first: Digest
        var writer: UInt32
        var file: UInt32
        var length: UInt32
        var check: UInt32
        var count: Int32
        var type: UInt32
    }

    private var keys = KeyIndex()
    /// By key number (``KeyIndex``).
    private var records = ChunkedArray<Record>()
    /// The blobs after the first of winners that have several, by record index.
    private var more: [UInt32: [BlobRef]] = [:]
    /// Lines longer than 4 GiB (never written by Casket), by record index.
    private var longLines: [UInt32: Int] = [:]
    private var writers = Interned()
    private var types = Interned()

    /// Keys (live and deleted) in the table.
    var count: Int { records.count }

    /// Live keys: those whose winner is not a tombstone.
    var liveCount: Int { records.indices.reduce(0) { $0 + (records[$1].count >= 0 ? 1 : 0) } }

    /// The hash kept in a ``Location``.
    static func check(_ line: UnsafeRawBufferPointer) -> UInt32 {
        var hasher = Hasher()
        hasher.combine(bytes: line)
        return UInt32(truncatingIfNeeded: hasher.finalize())
    }

    /// Offers a line: it becomes the key's winner if it wins over the current one (docs/FORMAT.md 5.4:
    /// greater time, then greater writer id as bytes, then greater line number).
    mutating func offer(_ entry: IndexEntry, at location: Location) {
        var key = entry.key
        key.withUTF8 { (bytes) in
            let (index, inserted) = keys.insert(bytes)
            if inserted {
                records.append(
                    Record(
                        timestamp: 0, line: 0, offset: 0, payloadBytes: 0, firstSize: 0, first: .empty, writer: 0,
                        file: 0, length: 0, check: 0, count: 0, type: 0))
            } else if !wins(entry, over: records[index]) {
                return
            }
            store(entry, at: index, location)
        }
    }

    /// The winner of `key`, or `nil`.
    subscript(key: IndexKey) -> Winner? {
        index(of: key).map(winner)
    }

    /// Whether `key` has a winner, live or deleted.
    func contains(_ key: IndexKey) -> Bool { index(of: key) != nil }

    /// The live keys (with `includingDeleted`, every key), sorted by their bytes.
    func sortedKeys(includingDeleted: Bool = false) -> [IndexKey] {
        order(includingDeleted: includingDeleted).map { IndexKey(key(Int($0))) }
    }

    /// Calls `body` with every live key and its winner in key order (bytes), one at a time: only an array
    /// of 4-byte record numbers is sorted, no key is copied out of the arena until it is handed over.
    func forEachLive(_ body: (String, Winner) throws(CasketError) -> Void) throws(CasketError) {
        for index in order(includingDeleted: false) { try body(key(Int(index)), winner(Int(index))) }
    }

    /// Calls `body` with the blobs of every live winner (a blob shared by keys once per key).
    func forEachLiveBlob(_ body: (BlobRef) -> Void) {
        for index in records.indices where records[index].count > 0 {
            body(BlobRef(digest: records[index].first, size: records[index].firstSize))
            for ref in more[UInt32(index)] ?? [] { body(ref) }
        }
    }

    /// The record numbers of the live keys (or of all), sorted by key bytes.
    private func order(includingDeleted: Bool) -> [UInt32] {
        var order: [UInt32] = []
        order.reserveCapacity(records.count)
        for index in records.indices where includingDeleted || records[index].count >= 0 {
            order.append(UInt32(index))
        }
        order.sort { keys.precedes(Int($0), Int($1)) }
        return order
    }

    /// The bit of ``Record/type`` that says the value's one payload is its first blob (type ids stay
    /// below it).
    private static let singleBlobFlag: UInt32 = 1 << 31

    /// The one payload of `key`'s live value when it is a blob, as ``ValueTree/payloads(in:)`` of its
    /// tree would say, decided when the line was read: a `get` of such a key reads no line again.
    func singleBlob(_ key: IndexKey) -> BlobRef? {
        guard let index = index(of: key) else { return nil }
        let record = records[index]
        guard record.count == 1, record.type & WinnerTable.singleBlobFlag != 0 else { return nil }
        return BlobRef(digest: record.first, size: record.firstSize)
    }

    /// Whether every payload of `value` is the blob `ref` (its hash and size), and there is no other
    /// (an inline one, another blob, a malformed reference): the walk of ``ValueTree/payloads(in:)``.
    private static func isSingleBlob(_ value: JSONValue, _ ref: BlobRef) -> Bool {
        var found = false
        func walk(_ value: JSONValue) -> Bool {
            switch value {
            case .array(let elements):
                return elements.allSatisfy(walk)
            case .object(let object):
                if let text = object["blob"]?.stringValue {
                    guard Digest(text) == ref.digest, object["size"]?.intValue == ref.size else { return false }
                    found = true
                } else if object["inline"]?.stringValue != nil {
                    return false
                }
                let isJSON = object["#type"]?.stringValue == "Json"
                return object.fields.allSatisfy { isJSON && $0.key == "content" || walk($0.value) }
            default:
                return true
            }
        }
        return walk(value) && found
    }

    private func index(of key: IndexKey) -> Int? { keys.index(of: key) }

    private func key(_ index: Int) -> String { keys.key(index) }

    private func winner(_ index: Int) -> Winner {
        let record = records[index]
        let length = longLines[UInt32(index)] ?? Int(record.length)
        return Winner(
            timestamp: record.timestamp, writer: writers.strings[Int(record.writer)], line: record.line,
            isDeleted: record.count < 0, payloadBytes: record.payloadBytes, blobCount: max(Int(record.count), 0),
            type: types.strings[Int(record.type & ~WinnerTable.singleBlobFlag)],
            location: Location(file: record.file, offset: record.offset, length: length, check: record.check))
    }

    private mutating func store(_ entry: IndexEntry, at index: Int, _ location: Location) {
        let blobs = entry.blobs
        records[index].timestamp = entry.timestamp
        records[index].line = entry.origin.line
        records[index].writer = writers.id(entry.origin.writer)
        records[index].file = location.file
        records[index].offset = location.offset
        records[index].check = location.check
        records[index].length = UInt32(clamping: location.length)
        longLines[UInt32(index)] = location.length > Int(UInt32.max) ? location.length : nil
        // A tombstone references nothing (FORMAT.md 5.2), whatever its line says.
        records[index].count = entry.isDeleted ? -1 : Int32(clamping: blobs.count)
        records[index].first = entry.isDeleted ? .empty : blobs.first?.digest ?? .empty
        records[index].firstSize = entry.isDeleted ? 0 : blobs.first?.size ?? 0
        records[index].payloadBytes = entry.isDeleted ? 0 : entry.payloadBytes
        records[index].type = types.id(entry.value?["#type"]?.stringValue ?? "")
        if let value = entry.value, blobs.count == 1, WinnerTable.isSingleBlob(value, blobs[0]) {
            records[index].type |= WinnerTable.singleBlobFlag
        }
        more[UInt32(index)] = !entry.isDeleted && blobs.count > 1 ? Array(blobs.dropFirst()) : nil
    }

    private func wins(_ entry: IndexEntry, over record: Record) -> Bool {
        if entry.timestamp != record.timestamp { return entry.timestamp > record.timestamp }
        let current = writers.strings[Int(record.writer)]
        if !current.sameBytes(as: entry.origin.writer) {
            return Array(current.utf8).lexicographicallyPrecedes(entry.origin.writer.utf8)
        }
        return entry.origin.line > record.line
    }
}
