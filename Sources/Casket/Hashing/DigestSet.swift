/// A set of blob hashes held as one sorted array: 16 bytes a hash and nothing else, so garbage
/// collection's live set of ten million blobs is 160 MB (a `Set<Digest>` needs two to four times that,
/// and twice again while it grows).
public struct DigestSet: Sendable, Equatable {
    private let sorted: [Digest]

    /// The set of `digests` (in any order, repeats allowed). Sorts in place: no second copy.
    public init(_ digests: consuming [Digest]) {
        var all = digests
        all.sort()
        var kept = 0
        for index in all.indices where kept == 0 || all[kept - 1] != all[index] {
            all[kept] = all[index]
            kept += 1
        }
        all.removeLast(all.count - kept)
        sorted = all
    }

    /// The set of `digests`.
    public init<S: Sequence>(_ digests: S) where S.Element == Digest { self.init(Array(digests)) }

    /// How many distinct hashes it holds.
    public var count: Int { sorted.count }

    /// Whether it holds `digest` (a binary search).
    public func contains(_ digest: Digest) -> Bool {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            let found = sorted[middle]
            if found == digest { return true }
            if found < digest { low = middle + 1 } else { high = middle }
        }
        return false
    }

    /// The hashes in order.
    public var elements: [Digest] { sorted }
}
