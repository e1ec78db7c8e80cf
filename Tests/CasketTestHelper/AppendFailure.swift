@_spi(Maintenance) import Casket

#if canImport(Glibc)
import Glibc
#endif

/// `append-fail STORE`: sets `k0`, then lowers the soft `RLIMIT_FSIZE` to 20 bytes past the end of the
/// session's index file (SIGXFSZ ignored) so that the append of `k1` fails part-way, raises the limit again
/// and sets `k2`. Prints one JSON object: the first file, its size at the failure, the writer ids after
/// each set, and each set's outcome.
func appendFailure(_ cache: CacheStore) throws {
    let session = try cache.writeSession()
    var outcomes: [String] = []
    let size = 100
    try session.set("k0", bytes: payload(for: "k0", size: size))
    let first = session.writerID
    let firstPath = cache.blobs.root + "/index/" + first + ".jsonl"
    var st = stat()
    guard stat(firstPath, &st) == 0 else { fail("cannot stat \(firstPath)") }
    let limitAt = Int64(st.st_size) + 20
    signal(SIGXFSZ, SIG_IGN)
    var saved = rlimit()
    getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
    var lowered = saved
    lowered.rlim_cur = rlim_t(limitAt)
    guard setrlimit(Int32(RLIMIT_FSIZE.rawValue), &lowered) == 0 else { fail("setrlimit failed") }
    do {
        try session.set("k1", bytes: payload(for: "k1", size: size))
        outcomes.append("ok")
    } catch {
        outcomes.append("error: \(error)")
    }
    let afterFailure = session.writerID
    guard setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved) == 0 else { fail("setrlimit failed") }
    do {
        try session.set("k2", bytes: payload(for: "k2", size: size))
        outcomes.append("ok")
    } catch {
        outcomes.append("error: \(error)")
    }
    try session.close()
    let quoted = outcomes.map { "\"" + String($0.map { $0 == "\"" || $0 == "\\" ? "'" : $0 }) + "\"" }
    print(
        "{\"first\":\"\(first)\",\"limit\":\(limitAt),\"after_failure\":\"\(afterFailure)\","
            + "\"last\":\"\(session.writerID)\",\"outcomes\":[\(quoted.joined(separator: ","))]}")
}
