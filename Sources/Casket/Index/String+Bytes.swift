extension String {
    /// Whether two strings have the same UTF-8 bytes (`==` on `String` is canonical equivalence).
    package func sameBytes(as other: String) -> Bool {
        let a = utf8
        let b = other.utf8
        guard a.count == b.count else { return false }
        let equal = a.withContiguousStorageIfAvailable { pa in
            b.withContiguousStorageIfAvailable { pb in String.bytesEqual(pa, pb) }
        }
        return (equal ?? nil) ?? a.elementsEqual(b)
    }

    /// Byte equality of two buffers of one length, eight bytes at a time.
    static func bytesEqual(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let count = a.count
        guard count > 0, let pa = a.baseAddress, let pb = b.baseAddress else { return true }
        let ra = UnsafeRawPointer(pa)
        let rb = UnsafeRawPointer(pb)
        var i = 0
        while i + 8 <= count {
            if ra.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                != rb.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            {
                return false
            }
            i += 8
        }
        while i < count {
            if pa[i] != pb[i] { return false }
            i += 1
        }
        return true
    }
}
