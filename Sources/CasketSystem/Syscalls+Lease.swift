#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Reading a symlink: the PID namespace that lease records carry is the target of /proc/self/ns/pid.

/// `readlink(2)`; the target as a string.
package func system_readlink(_ path: String) -> Result<String, Errno> {
    var buffer = [CChar](repeating: 0, count: 512)
    let count = valueOrErrno { readlink(path, &buffer, buffer.count - 1) }
    return count.map { n in
        buffer.withUnsafeBufferPointer { raw in
            String(decoding: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: raw[..<n])), as: UTF8.self)
        }
    }
}
