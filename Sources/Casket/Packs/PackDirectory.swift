/// Which sealed pack may hold a hash, for every sealed pack a process knew when it built the directory: the
/// first 8 bytes of each record's hash, sorted, beside the pack that holds it (12 bytes a record).
///
/// Without it a lookup searched every pack's index in turn, and a writer's dedup probe of a new payload
/// (a miss) searched them all: the cost of a write grew with the number of packs, so with the number of
/// values (docs/DESIGN.md 3.5). It is only a hint: a candidate is always confirmed in its pack's own index,
/// and packs it does not cover (sealed since, open, or replaced under the same id) are searched one by one.
/// Sealed indexes never change (docs/FORMAT.md 3.8), so a directory is never wrong about what it covers.
struct PackDirectory {
    private var highs: [UInt64] = []
    private var owners: [UInt32] = []
    private var packs: [PackShelf.Pack] = []
    private var covered: Set<ObjectIdentifier> = []

    /// A directory of no pack.
    init() {}

    /// The directory of `sealed` (each with an index).
    ///
    /// Each index is sorted by hash (checked when it is opened: docs/FORMAT.md 3.8), so a merge of them
    /// yields the directory in order: no array of pairs (16 bytes a record) to sort beside it, which was
    /// the largest part of a reader's memory after its winner table (docs/DESIGN.md 3.5).
    init(_ sealed: [PackShelf.Pack]) {
        var indexes: [PackIndex] = []
        for pack in sealed {
            guard let index = pack.index else { continue }
            packs.append(pack)
            covered.insert(ObjectIdentifier(pack))
            indexes.append(index)
        }
        let total = indexes.reduce(0) { $0 + $1.count }
        highs.reserveCapacity(total)
        owners.reserveCapacity(total)
        // A min-heap of each index's next record: (its hash's first 8 bytes, the pack, the record after it).
        var heap: [(high: UInt64, owner: UInt32, next: Int)] = []
        for (owner, index) in indexes.enumerated() where index.count > 0 {
            heap.append((index.high(0), UInt32(owner), 1))
        }
        func siftDown(_ start: Int) {
            var parent = start
            while true {
                let left = 2 * parent + 1
                guard left < heap.count else { return }
                var least = left
                if left + 1 < heap.count && heap[left + 1].high < heap[left].high { least = left + 1 }
                guard heap[least].high < heap[parent].high else { return }
                heap.swapAt(parent, least)
                parent = least
            }
        }
        for start in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(start) }
        while let top = heap.first {
            highs.append(top.high)
            owners.append(top.owner)
            let index = indexes[Int(top.owner)]
            if top.next < index.count {
                heap[0] = (index.high(top.next), top.owner, top.next + 1)
            } else {
                heap[0] = heap[heap.count - 1]
                heap.removeLast()
            }
            siftDown(0)
        }
    }

    /// How many packs it covers.
    var packCount: Int { packs.count }

    /// Whether it covers this very pack (not another one opened later under the same id).
    func covers(_ pack: PackShelf.Pack) -> Bool { covered.contains(ObjectIdentifier(pack)) }

    /// The covered packs that may hold `digest`: those with a record whose hash starts with the same 8 bytes.
    func candidates(_ digest: Digest) -> some Sequence<PackShelf.Pack> {
        var low = 0
        var high = highs.count
        while low < high {
            let middle = (low + high) / 2
            if highs[middle] < digest.high { low = middle + 1 } else { high = middle }
        }
        var end = low
        while end < highs.count && highs[end] == digest.high { end += 1 }
        return (low..<end).lazy.map { packs[Int(owners[$0])] }
    }

    /// Whether a directory of every sealed pack should replace this one: once the sealed packs it does not
    /// cover reach 8 and a sixteenth of those it does. A lookup then searches at most that many packs one
    /// by one, and the rebuilds of a writer that seals pack after pack cost about 16 sorts of every record
    /// per doubling of the store.
    func isStale(uncoveredSealed: Int) -> Bool { uncoveredSealed >= max(8, packs.count / 16) }
}
