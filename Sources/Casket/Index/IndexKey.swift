/// A key of the store, compared as its UTF-8 bytes (docs/FORMAT.md, section 5.2, "Keys").
///
/// Swift's `String` equality, hashing and ordering use canonical equivalence, so "café" in NFC and in
/// NFD would be one key for Swift and two for Python and exca: compaction would keep one, GC sweep the
/// other's blob. Every table of keys (and of writer ids and index file names, which are compared as
/// bytes too) uses this type instead; the string's UTF-8 is kept exactly, never normalised.
public struct IndexKey: Sendable, Hashable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The key as text; its `utf8` view holds the key's bytes.
    public let string: String

    /// Wraps a key.
    public init(_ string: String) {
        var string = string
        string.makeContiguousUTF8()
        self.string = string
    }

    /// Wraps a literal key.
    public init(stringLiteral value: String) { self.init(value) }

    /// Equal when the UTF-8 bytes are equal.
    public static func == (lhs: IndexKey, rhs: IndexKey) -> Bool {
        lhs.string.sameBytes(as: rhs.string)
    }

    /// Hashes the UTF-8 bytes.
    public func hash(into hasher: inout Hasher) {
        withBytes { hasher.combine(bytes: $0) }
    }

    /// Orders by UTF-8 bytes (the same order as Unicode code points, and as Python's `str`).
    public static func < (lhs: IndexKey, rhs: IndexKey) -> Bool {
        lhs.withBytes { a in rhs.withBytes { b in a.lexicographicallyPrecedes(b) } }
    }

    /// The key as text.
    public var description: String { string }

    private func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        if let result = string.utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(string.utf8).withUnsafeBytes(body)
    }
}
