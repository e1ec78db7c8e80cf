/// Every key's winner reduced to what garbage collection's mark and a writer's stamping need (docs/GC.md,
/// docs/DESIGN.md 3.5): its time and origin, for the winner rule (docs/FORMAT.md 5.4), and its blob hashes.
///
/// Flat arrays instead of a dictionary of structs of strings: the keys in a ``KeyIndex``, one 40-byte
/// record a key at the key's number, writer ids stored once. About
/// 70 bytes a key plus the key's bytes, where `[IndexKey: MarkWinner]` took 150 to 250 and twice that
/// while it grew, so the mark of ten million keys fits in about a gigabyte.
struct MarkTable {
    /// One key's winner. `count` is the number of blobs, -1 for a tombstone; blobs after the first are in
    /// ``MarkTable/more``.
    private struct Record {
        var timestamp: Int64
        var line: Int
        var first: Digest
        var writer: UInt32
        var count: Int32
    }

    private var keys = KeyIndex()
    /// By key number (``KeyIndex``).
    private var records: [Record] = []
    /// The blobs after the first of winners that have several, by record index.
    private var more: [UInt32: [Digest]] = [:]
    private var writers = Interned()

    /// Keys (live and deleted) in the table.
    var count: Int { records.count }

    /// Offers a line: it becomes the key's winner if it wins over the current one (docs/FORMAT.md 5.4:
    /// greater time, then greater writer id as bytes, then greater line number).
    mutating func offer(_ entry: IndexEntry) {
        let writer = writers.id(entry.origin.writer)
        var key = entry.key
        key.withUTF8 { (bytes) in
            let (index, inserted) = keys.insert(bytes)
            if inserted {
                records.append(Record(timestamp: 0, line: 0, first: .empty, writer: 0, count: 0))
            } else if !wins(entry, writer: writer, over: records[index]) {
                return
            }
            store(entry, writer: writer, at: index)
        }
    }

    /// The winner of `key`, or `nil`.
    subscript(key: IndexKey) -> IndexReader.MarkWinner? {
        keys.index(of: key).map(winner)
    }

    /// Calls `body` with every key and its winner, in no particular order.
    func forEach(_ body: (String, IndexReader.MarkWinner) throws(CasketError) -> Void) throws(CasketError) {
        for index in records.indices { try body(keys.key(index), winner(index)) }
    }

    /// Calls `body` with every blob of every live winner (a blob shared by keys once per key).
    func forEachLiveBlob(_ body: (Digest) -> Void) {
        for index in records.indices where records[index].count > 0 {
            body(records[index].first)
            for digest in more[UInt32(index)] ?? [] { body(digest) }
        }
    }

    /// Live keys: those whose winner is not a tombstone.
    var liveCount: Int { records.reduce(0) { $0 + ($1.count >= 0 ? 1 : 0) } }

    private func winner(_ index: Int) -> IndexReader.MarkWinner {
        let record = records[index]
        return IndexReader.MarkWinner(
            timestamp: record.timestamp, writer: writers.strings[Int(record.writer)], line: record.line,
            first: record.first,
            count: max(record.count, 0), deleted: record.count < 0, more: more[UInt32(index)])
    }

    private mutating func store(_ entry: IndexEntry, writer: UInt32, at index: Int) {
        let blobs = entry.blobs
        records[index].timestamp = entry.timestamp
        records[index].line = entry.origin.line
        records[index].writer = writer
        // A tombstone references nothing (FORMAT.md 5.2), whatever its line says.
        records[index].count = entry.isDeleted ? -1 : Int32(clamping: blobs.count)
        records[index].first = entry.isDeleted ? .empty : blobs.first?.digest ?? .empty
        more[UInt32(index)] = !entry.isDeleted && blobs.count > 1 ? blobs.dropFirst().map(\.digest) : nil
    }

    private func wins(_ entry: IndexEntry, writer: UInt32, over record: Record) -> Bool {
        if entry.timestamp != record.timestamp { return entry.timestamp > record.timestamp }
        if writer != record.writer {
            return Array(writers.strings[Int(record.writer)].utf8).lexicographicallyPrecedes(
                writers.strings[Int(writer)].utf8)
        }
        return entry.origin.line > record.line
    }
}
