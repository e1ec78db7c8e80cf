#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's limit on open descriptors (`RLIMIT_NOFILE`).
///
/// A reader keeps each pack of a store open (docs/FORMAT.md 3.8, one descriptor a pack), and a store of
/// ten million small values holds a few thousand packs, past the soft limit of 1,024 that many systems
/// give a process. The soft limit is only a default: like the Go runtime, Casket raises it to the hard
/// limit once, the first time a store's packs are read, so a large store never fails with `EMFILE`.
package enum OpenFileLimit {
    /// Raises the soft limit to the hard limit (at most once per process); returns the soft limit now.
    @discardableResult
    package static func raise() -> UInt64 { raised }

    private static let raised: UInt64 = {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var wanted = limit
            wanted.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &wanted) == 0 { return UInt64(wanted.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }()
}
