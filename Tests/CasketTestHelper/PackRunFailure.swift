@_spi(Maintenance) import Casket

#if canImport(Glibc)
import Glibc
#endif

/// `pack-run-fail STORE LIMIT COUNT`: lowers the soft `RLIMIT_FSIZE` to LIMIT bytes (SIGXFSZ ignored), so
/// that a buffered run of pack records (up to 1 MiB) that would end past it fails part-way, then sets
/// `r0..r{COUNT-1}` to distinct 4 KiB values through one session under group commit and closes it.
/// Prints "ok", or "error: ..." for the first set or close that failed.
func packRunFailure(_ cache: CacheStore, limit: Int, count: Int) {
    signal(SIGXFSZ, SIG_IGN)
    var lowered = rlimit()
    getrlimit(Int32(RLIMIT_FSIZE.rawValue), &lowered)
    lowered.rlim_cur = rlim_t(limit)
    guard setrlimit(Int32(RLIMIT_FSIZE.rawValue), &lowered) == 0 else { fail("setrlimit failed") }
    do {
        let session = try cache.writeSession()
        for i in 0..<count { try session.set("r\(i)", bytes: payload(for: "r\(i)", size: 4096)) }
        try session.close()
        emit("ok\n")
    } catch {
        emit("error: \(error)\n")
    }
}
