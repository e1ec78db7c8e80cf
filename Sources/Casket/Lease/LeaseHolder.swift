/// A lease file as a taker or a listing saw it, judged against the file system's now.
public struct LeaseHolder: Sendable, CustomStringConvertible {
    /// Why a lease counts as stale.
    public enum Staleness: String, Sendable {
        /// Its heartbeat (the file's mtime) is older than the TTL.
        case heartbeat
        /// Its holder is on this host, this boot and this PID namespace, and its pid does not exist.
        case deadProcess = "dead_process"
    }

    /// The lease file.
    public var path: String
    /// What it says; `nil` when it is empty, truncated or not a lease record (judged by mtime alone).
    public var record: LeaseRecord?
    /// The file's mtime: the last heartbeat, nanoseconds since the epoch (file-system time).
    public var heartbeat: Int64
    /// How long ago the heartbeat was, in file-system time.
    public var age: Duration
    /// Why it is stale; `nil` while it is live.
    public var staleness: Staleness?
    /// The bytes read, so that a taker can tell whether the file changed since it was judged.
    let bytes: [UInt8]?

    /// Whether the lease may be taken over.
    public var isStale: Bool { staleness != nil }

    /// `pid 123 on node-b`, or `an unreadable lease file` for a file that holds no record.
    public var description: String { record.map(\.description) ?? "an unreadable lease file" }

    /// Whether `other` is the same file content with the same heartbeat.
    func isUnchanged(_ other: LeaseHolder) -> Bool { bytes == other.bytes && heartbeat == other.heartbeat }

    /// Looks at a lease file and judges it against `now` (the file system's) and `ttl`: `nil` when there
    /// is none.
    ///
    /// - Throws: ``CasketError/Code/notARegularFile`` for a directory under the lease's name (it cannot
    ///   be judged or removed, so it must be reported, never waited on); an I/O error.
    public static func observe(in store: BlobStore, _ path: String, now: Int64, ttl: Duration) throws(CasketError)
        -> LeaseHolder?
    {
        let (folder, name) = try store.files.locate(path)
        return try observe(folder, name, now: now, ttl: ttl)
    }

    /// ``observe(in:_:now:ttl:)`` for the entry `name` of an open folder.
    static func observe(_ folder: Directory, _ name: String, now: Int64, ttl: Duration) throws(CasketError)
        -> LeaseHolder?
    {
        let path = folder.path(of: name)
        let status = folder.status(name)
        guard case .success(let st) = status else {
            if case .failure(let errno) = status, errno != .noSuchFileOrDirectory { throw .stat(path, errno: errno) }
            return nil
        }
        if st.isDirectory {
            throw CasketError(
                .notARegularFile,
                "'\(path)' is a directory where a lease file belongs; nothing can take it over: remove it",
                path: path)
        }
        var bytes: [UInt8]? = nil
        if st.isRegularFile {
            switch folder.readIfRegular(name, limit: 1 << 16) {
            case .success(let read): bytes = read
            case .failure(.noSuchFileOrDirectory): return nil
            case .failure(let errno): throw .read(path, errno: errno)
            }
        }
        let record = bytes.flatMap { LeaseRecord(parsing: $0) }
        let age = now - st.mtimeNanoseconds
        var staleness: Staleness? = nil
        if age > ttl.wholeNanoseconds {
            staleness = .heartbeat
        } else if let record, record.pidIsComparable, record.pid > 0, !processExists(record.pid) {
            staleness = .deadProcess
        }
        return LeaseHolder(
            path: path, record: record, heartbeat: st.mtimeNanoseconds, age: .nanoseconds(age),
            staleness: staleness, bytes: bytes)
    }

    /// `kill(pid, 0)`: `EPERM` means the process exists and belongs to another user.
    static func processExists(_ pid: Int32) -> Bool {
        switch system_kill(pid, 0) {
        case .success: return true
        case .failure(.noSuchProcess): return false
        case .failure: return true
        }
    }
}
