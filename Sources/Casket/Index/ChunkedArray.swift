/// An array kept in chunks of 65,536 elements, so that it never grows by copying itself: a `[Record]`
/// of ten million 96-byte records doubles from 8.4 million, holding 0.8 GB twice at that moment; this
/// holds at most one chunk more than it needs (docs/DESIGN.md 3.5).
struct ChunkedArray<Element> {
    private static var shift: Int { 16 }
    private var chunks: [[Element]] = []
    private(set) var count = 0

    var indices: Range<Int> { 0..<count }

    mutating func append(_ element: Element) {
        if count & ((1 << Self.shift) - 1) == 0 {
            var chunk: [Element] = []
            chunk.reserveCapacity(1 << Self.shift)
            chunks.append(chunk)
        }
        chunks[count >> Self.shift].append(element)
        count += 1
    }

    subscript(index: Int) -> Element {
        get { chunks[index >> Self.shift][index & ((1 << Self.shift) - 1)] }
        _modify { yield &chunks[index >> Self.shift][index & ((1 << Self.shift) - 1)] }
    }
}
