extension Digest: CustomStringConvertible, LosslessStringConvertible {
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The 32-character lowercase hex form.
    public var hex: String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            for (index, word) in [high, low].enumerated() {
                for nibble in 0..<16 {
                    let value = Int((word >> UInt64(60 - 4 * nibble)) & 0xF)
                    buffer[index * 16 + nibble] = Digest.hexDigits[value]
                }
            }
            return 32
        }
    }

    /// The 32-character lowercase hex form.
    public var description: String { hex }

    /// Parses a well-formed hash: exactly 32 lowercase hex digits, nothing else.
    ///
    /// Returns `nil` for anything else, so that a string such as `../../etc/passwd` can never reach a path.
    public init?(_ text: String) {
        let utf8 = text.utf8
        guard utf8.count == 32 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        var index = 0
        for byte in utf8 {
            let value: UInt64
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = UInt64(byte - UInt8(ascii: "a") + 10)
            default: return nil
            }
            if index < 16 { high = high << 4 | value } else { low = low << 4 | value }
            index += 1
        }
        self.init(high: high, low: low)
    }

    /// Parses a hash given by a user or read from a file, with an error that says what is wrong.
    ///
    /// - Parameter text: The candidate hash.
    /// - Throws: ``CasketError/Code/invalidHash`` naming the string and the expected form.
    public init(validating text: String) throws(CasketError) {
        guard let digest = Digest(text) else {
            let shown = text.count > 80 ? String(text.prefix(77)) + "..." : text
            throw CasketError(
                .invalidHash,
                "'\(shown)' is not a hash: expected 32 lowercase hexadecimal digits (XXH3-128)"
            )
        }
        self = digest
    }
}
