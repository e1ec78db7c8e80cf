extension HostIdentity {
    /// This process's PID namespace as Linux names it (`pid:[4026531836]`), empty where there is no
    /// `/proc`. Containers on one node may share a host name; a pid is meaningful only in its namespace,
    /// so a lease judges a holder's pid dead only when host name, boot and namespace are all its own.
    package static let pidNamespace: String = {
        guard case .success(let target) = system_readlink("/proc/self/ns/pid") else { return "" }
        return target
    }()

    /// This machine's boot id (`/proc/sys/kernel/random/boot_id`), empty where there is none: pids of
    /// another boot of the same host name prove nothing either.
    package static let bootID: String = {
        guard let folder = try? Directory.open("/proc/sys/kernel/random"),
            case .success(let bytes?) = folder.readIfRegular("boot_id", limit: 128)
        else { return "" }
        return String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace }
    }()
}
