import Casket

#if canImport(Glibc)
import Glibc
#endif

/// Standard output written in 64 KiB blocks, for commands that stream one record at a time (`casket ls`).
struct BufferedOutput {
    var bytes: [UInt8] = []
    static let blockSize = 64 << 10

    init() { bytes.reserveCapacity(BufferedOutput.blockSize + 4096) }

    mutating func append(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func flushIfFull() throws(CasketError) {
        if bytes.count >= BufferedOutput.blockSize { try flush() }
    }

    mutating func flush() throws(CasketError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            if n < 0 {
                let errno = Errno(rawValue: Glibc.errno)
                if errno == .interrupted { continue }
                throw CasketError(.io, "cannot write to standard output", path: "<stdout>", errno: errno)
            }
            offset += n
        }
        bytes.removeAll(keepingCapacity: true)
    }
}
