/// How a key is written in messages: the one rendering every error about a key goes through.
///
/// Keys are arbitrary text, possibly megabytes long or holding newlines and terminal escapes: a message
/// quotes the key with control characters, backslashes and quotes escaped, and shortens a long key to its
/// first ``limit`` characters followed by `… (N bytes)`, so that it stays one readable line.
public enum KeyDisplay {
    /// Characters of a key shown before it is shortened.
    public static let limit = 80

    /// `'key'`, escaped and shortened.
    public static func quoted(_ key: String) -> String { quoted(bytes: Array(key.utf8)) }

    /// `'key'`, escaped and shortened.
    public static func quoted(_ key: IndexKey) -> String { quoted(key.description) }

    /// The same for raw bytes that may not be valid UTF-8 (a command-line argument): an invalid byte is
    /// shown as `\xNN`.
    public static func quoted(bytes: [UInt8]) -> String {
        var out = "'"
        var shown = 0
        var index = 0
        while index < bytes.count {
            if shown == limit {
                out += "… (\(bytes.count) bytes)"
                break
            }
            let length = sequenceLength(bytes, at: index)
            if length == 0 {
                out += "\\x" + hex(bytes[index])
                index += 1
            } else {
                let scalar = String(decoding: bytes[index..<index + length], as: UTF8.self).unicodeScalars.first!
                out += escaped(scalar)
                index += length
            }
            shown += 1
        }
        return out + "'"
    }

    private static func escaped(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        case "\\": return "\\\\"
        case "'": return "\\'"
        default:
            let value = scalar.value
            if value < 0x20 || value == 0x7F { return "\\x" + hex(UInt8(value)) }
            if (0x80...0x9F).contains(value) || value == 0x2028 || value == 0x2029 || value == 0xFEFF {
                return "\\u{" + String(value, radix: 16) + "}"
            }
            return String(scalar)
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }

    /// The length of the valid UTF-8 sequence at `index`, or 0 when the byte there does not start one.
    static func sequenceLength(_ bytes: [UInt8], at index: Int) -> Int {
        let lead = bytes[index]
        let length: Int
        switch lead {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: length = 2
        case 0xE0...0xEF: length = 3
        case 0xF0...0xF4: length = 4
        default: return 0
        }
        guard index + length <= bytes.count else { return 0 }
        let slice = Array(bytes[index..<index + length])
        // Let the standard library judge overlong forms and surrogates.
        return String(validating: slice, as: UTF8.self) == nil ? 0 : length
    }
}
