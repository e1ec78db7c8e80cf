/// Strings stored once and named by a number (writer ids, value types), compared as bytes.
struct Interned {
    private(set) var strings: [String] = []
    private var ids: [IndexKey: UInt32] = [:]

    mutating func id(_ string: String) -> UInt32 {
        let key = IndexKey(string)
        if let known = ids[key] { return known }
        let id = UInt32(strings.count)
        strings.append(key.string)
        ids[key] = id
        return id
    }
}
