/// Every key's winner reduced to what garbage collection's mark and a writer's stamping need (docs/GC.md,
/// docs/DESIGN.md 3.5): its time and origin, for the winner rule (docs/FORMAT.md 5.4), and its blob hashes.
///
/// Flat arrays instead of a dictionary of structs of strings: the keys' bytes in one arena, one 56-byte
/// record a key, an open-addressing table of 4-byte slots at most half full, writer ids stored once. About
/// 70 bytes a key plus the key's bytes, where `[IndexKey: MarkWinner]` took 150 to 250 and twice that
/// while it grew, so the mark of ten million keys fits in about a gigabyte.
struct MarkTable {
    /// One key's winner. `count` is the number of blobs, -1 for a tombstone; blobs after the first are in
    /// ``MarkTable/more``.
    private struct Record {
        var keyStart: Int
        var timestamp: Int64
        var line: Int
        var first: Digest
        var keyLength: UInt32
        var hash: UInt32
        var writer: UInt32
        var count: Int32
    }

    private var keyBytes: [UInt8] = []
    private var records: [Record] = []
    /// Record index + 1, 0 for an empty slot; its length is a power of two, at least twice `records.count`.
    private var slots = [UInt32](repeating: 0, count: 1024)
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
            let hash = MarkTable.hash(bytes)
            let (slot, found) = find(bytes, hash: hash)
            if let index = found {
                if wins(entry, writer: writer, over: records[index]) { store(entry, writer: writer, at: index) }
                return
            }
            let index = records.count
            precondition(index < Int(UInt32.max) - 1, "more keys than a mark table holds")
            let start = keyBytes.count
            keyBytes.append(contentsOf: bytes)
            records.append(
                Record(
                    keyStart: start, timestamp: 0, line: 0, first: .empty, keyLength: UInt32(bytes.count), hash: hash,
                    writer: 0, count: 0))
            store(entry, writer: writer, at: index)
            slots[slot] = UInt32(index + 1)
            if records.count * 2 > slots.count { grow() }
        }
    }

    /// The winner of `key`, or `nil`.
    subscript(key: IndexKey) -> IndexReader.MarkWinner? {
        var text = key.string
        return text.withUTF8 { (bytes) -> IndexReader.MarkWinner? in
            find(bytes, hash: MarkTable.hash(bytes)).index.map(winner)
        }
    }

    /// The slot of the key `bytes`: the one that holds its record, or the empty one where it would go.
    private func find(_ bytes: UnsafeBufferPointer<UInt8>, hash: UInt32) -> (slot: Int, index: Int?) {
        var slot = Int(hash) & (slots.count - 1)
        while slots[slot] != 0 {
            let index = Int(slots[slot] - 1)
            if records[index].hash == hash && sameKey(index, bytes) { return (slot, index) }
            slot = (slot + 1) & (slots.count - 1)
        }
        return (slot, nil)
    }

    /// Calls `body` with every key and its winner, in no particular order.
    func forEach(_ body: (String, IndexReader.MarkWinner) throws(CasketError) -> Void) throws(CasketError) {
        for index in records.indices {
            let record = records[index]
            let key = keyBytes.withUnsafeBufferPointer {
                String(
                    decoding: UnsafeBufferPointer(
                        rebasing: $0[record.keyStart..<record.keyStart + Int(record.keyLength)]), as: UTF8.self)
            }
            try body(key, winner(index))
        }
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

    private func sameKey(_ index: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let record = records[index]
        guard Int(record.keyLength) == bytes.count else { return false }
        return keyBytes.withUnsafeBufferPointer { (arena) in
            arena[record.keyStart..<record.keyStart + bytes.count].elementsEqual(bytes)
        }
    }

    private mutating func grow() {
        var wider = [UInt32](repeating: 0, count: slots.count * 2)
        let mask = wider.count - 1
        for index in records.indices {
            var slot = Int(records[index].hash) & mask
            while wider[slot] != 0 { slot = (slot + 1) & mask }
            wider[slot] = UInt32(index + 1)
        }
        slots = wider
    }

    /// Swift's per-process seeded hash of the key's bytes: keys chosen to collide on one machine do not
    /// collide on another.
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var hasher = Hasher()
        hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
        return UInt32(truncatingIfNeeded: hasher.finalize())
    }
}
