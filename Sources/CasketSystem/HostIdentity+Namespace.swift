#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension HostIdentity {
    /// This process's PID namespace as Linux names it (`pid:[4026531836]`), empty where there is no
    /// `/proc`. Containers on one node may share a host name; a pid is meaningful only in its namespace,
    /// so a lock judges a holder's pid dead only when host name and namespace are both its own.
    package static let pidNamespace: String = {
        var buffer = [CChar](repeating: 0, count: 128)
        let n = readlink("/proc/self/ns/pid", &buffer, buffer.count - 1)
        guard n > 0 else { return "" }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()
}
