/// The keys of a winner table (``MarkTable``, ``WinnerTable``), numbered 0, 1, 2... in the order they
/// were first offered, so a table keeps its records in a parallel array at the same numbers.
///
/// The keys' bytes are in one arena, each key's place and hash in chunks that never move, and the lookup is
/// an open-addressing table of 4-byte slots at most half full: about 20 bytes a key plus its bytes.
struct KeyIndex {
    private struct Place {
        var start: Int
        var length: UInt32
        var hash: UInt32
    }

    private var bytes: [UInt8] = []
    private var places = ChunkedArray<Place>()
    /// Key number + 1, 0 for an empty slot; its length is a power of two, at least twice `count`.
    private var slots = [UInt32](repeating: 0, count: 1024)

    /// The number of keys.
    var count: Int { places.count }

    /// The number of `key`, added as the next number when it is new.
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>) -> (index: Int, inserted: Bool) {
        let hash = KeyIndex.hash(key)
        let (slot, found) = find(key, hash: hash)
        if let found { return (found, false) }
        let index = places.count
        precondition(index < Int(UInt32.max) - 1, "more keys than a winner table holds")
        places.append(Place(start: bytes.count, length: UInt32(key.count), hash: hash))
        bytes.append(contentsOf: key)
        slots[slot] = UInt32(index + 1)
        if places.count * 2 > slots.count { grow() }
        return (index, true)
    }

    /// The number of `key`, or `nil`.
    func index(of key: IndexKey) -> Int? {
        var text = key.string
        return text.withUTF8 { find($0, hash: KeyIndex.hash($0)).index }
    }

    /// Key number `index`.
    func key(_ index: Int) -> String {
        withBytes(of: index) { String(decoding: $0, as: UTF8.self) }
    }

    /// Calls `body` with the bytes of key number `index`.
    func withBytes<R>(of index: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let place = places[index]
        return bytes.withUnsafeBufferPointer {
            body(UnsafeBufferPointer(rebasing: $0[place.start..<place.start + Int(place.length)]))
        }
    }

    /// Whether key `a` sorts before key `b` (bytes).
    func precedes(_ a: Int, _ b: Int) -> Bool {
        withBytes(of: a) { (x) in withBytes(of: b) { (y) in x.lexicographicallyPrecedes(y) } }
    }

    /// The slot of `key`: the one that holds its number, or the empty one where it would go.
    private func find(_ key: UnsafeBufferPointer<UInt8>, hash: UInt32) -> (slot: Int, index: Int?) {
        var slot = Int(hash) & (slots.count - 1)
        while slots[slot] != 0 {
            let index = Int(slots[slot] - 1)
            if places[index].hash == hash && withBytes(of: index, { $0.elementsEqual(key) }) { return (slot, index) }
            slot = (slot + 1) & (slots.count - 1)
        }
        return (slot, nil)
    }

    private mutating func grow() {
        var wider = [UInt32](repeating: 0, count: slots.count * 2)
        let mask = wider.count - 1
        for index in places.indices {
            var slot = Int(places[index].hash) & mask
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
