/// A window of a payload as a user writes it, `A:B`: bytes from offset A (included) to B (excluded); A or B
/// may be left out (`A:` to the end, `:B` from the start). `casket get --range` and `blob get --range`.
public struct PayloadRange: Sendable, Equatable {
    /// The first byte.
    public var start: Int64
    /// The end (excluded); `nil` for the end of the payload.
    public var end: Int64?

    /// A window from `start` to `end` (`nil`: the end of the payload).
    public init(start: Int64 = 0, end: Int64? = nil) {
        self.start = start
        self.end = end
    }

    /// Parses `A:B`, `A:` or `:B` (decimal byte offsets, no sign); `nil` for anything else or `B < A`.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        func offset(_ text: Substring) -> Int64?? {
            if text.isEmpty { return .some(nil) }
            guard text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int64(text) else { return nil }
            return .some(value)
        }
        guard let start = offset(parts[0]), let end = offset(parts[1]) else { return nil }
        self.init(start: start ?? 0, end: end)
        if let end, end < self.start { return nil }
    }

    /// The window within a payload of `size` bytes.
    ///
    /// - Throws: ``CasketError/Code/invalidArgument`` when it goes beyond the payload.
    public func resolved(size: Int64, of what: String) throws(CasketError) -> Range<Int64> {
        let upper = end ?? size
        guard start >= 0, start <= upper, upper <= size else {
            throw CasketError(
                .invalidArgument,
                "range \(start):\(end.map(String.init) ?? "") is beyond the end of \(what) (\(size) bytes)")
        }
        return start..<upper
    }
}
