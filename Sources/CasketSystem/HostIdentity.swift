/// Names that identify this host and process in temp, index, lock and claim file names.
package enum HostIdentity {
    /// The host name with every byte outside `[A-Za-z0-9_-]` replaced by `_` (docs/FORMAT.md, section 4).
    package static let host: String = sanitize(system_hostname())

    package static func sanitize(_ name: String) -> String {
        let bytes = name.utf8.map { byte -> UInt8 in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
                return byte
            default:
                return UInt8(ascii: "_")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The current process id, read at each call so that a forked child gets its own.
    package static var pid: Int32 { system_getpid() }

    /// `count` random bytes as lowercase hex.
    package static func randomHex(bytes count: Int) -> String {
        var raw = [UInt8](repeating: 0, count: count)
        raw.withUnsafeMutableBytes { system_random($0) }
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for byte in raw {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
