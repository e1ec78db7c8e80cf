import Foundation
import Synchronization

/// A lease on one file of the shared file system: at most one holder at a time, across processes, PID
/// namespaces and hosts, without `flock` (docs/FORMAT.md, section 7). The GC lock and the compute-once
/// claims are leases; they add only their file names, TTLs and messages.
///
/// - **Take**: the record goes to a unique file that is `link`ed to the lease's name (``StoreFiles/createByLink(_:_:sync:)``):
///   exactly one of any number of racing takers creates it, on NFS too.
/// - **Stale**: the file's mtime (the heartbeat) is older than the TTL against the file system's now; or
///   its record names this host, this boot and this PID namespace and a pid that does not exist. An
///   empty or unparseable file is judged by its mtime alone.
/// - **Take over**: under the exclusive file `<lease>.takeover`, check that the lease file is still the
///   one judged stale, remove it, and take it as above. Takers never remove a lease they have not judged.
/// - **Heartbeat**: a thread touches the file every `heartbeat` after checking it still holds this
///   owner's token; a file gone or holding another token means the lease was lost (``isLost``).
/// - **Release**: under `<lease>.takeover` too, remove the file only if it holds this owner's token.
public final class Lease: Sendable {
    /// The lease file, for messages.
    public let path: String
    /// Its folder, open, and its name there: every effect on the file goes through them.
    let folder: Directory
    let name: String
    /// What this holder wrote in it.
    public let record: LeaseRecord
    /// The TTL this holder was taken with.
    public let ttl: Duration
    /// The stale lease that was removed to take this one, if any.
    public let tookOver: LeaseHolder?
    let interval: Duration
    private let state: Mutex<State>
    private let wakeup = NSCondition()

    private struct State {
        var released = false
        var lost = false
        var lastRefresh: ContinuousClock.Instant
    }

    init(
        folder: Directory, name: String, record: LeaseRecord, ttl: Duration, heartbeat: Duration,
        tookOver: LeaseHolder?
    ) {
        self.folder = folder
        self.name = name
        self.path = folder.path(of: name)
        self.record = record
        self.ttl = ttl
        self.interval = heartbeat
        self.tookOver = tookOver
        self.state = Mutex(State(lastRefresh: .now))
        let thread = Thread { [self] in heartbeatLoop() }
        thread.name = "casket-lease-heartbeat"
        thread.start()
    }

    deinit { release() }

    /// How long without a successful refresh before the holder must assume others judge it stale.
    var silenceLimit: Duration { max(ttl, interval * 4) }

    /// True once the lease is lost: its file is gone or holds another owner's token (taken over after
    /// this holder paused for longer than a TTL), or no heartbeat has succeeded for a TTL (and at least
    /// four beats). The holder must stop doing what the lease protects.
    public var isLost: Bool {
        state.withLock { $0.lost || ContinuousClock.now - $0.lastRefresh > silenceLimit }
    }

    /// Whether the lease file still holds this owner's token (one read, now).
    public func isHeld() -> Bool {
        guard case .success(let bytes?) = folder.readIfRegular(name, limit: 1 << 16),
            let current = LeaseRecord(parsing: bytes)
        else { return false }
        return current.token == record.token
    }

    private func heartbeatLoop() {
        while true {
            wakeup.lock()
            _ = wakeup.wait(until: Date(timeIntervalSinceNow: Double(interval.wholeNanoseconds) / 1e9))
            wakeup.unlock()
            if state.withLock({ $0.released }) { return }
            let verdict: Bool?  // true: refreshed; false: lost for sure; nil: could not tell (I/O error)
            switch folder.readIfRegular(name, limit: 1 << 16) {
            case .success(let bytes?) where LeaseRecord(parsing: bytes)?.token == record.token:
                switch folder.touch(name) {
                case .success: verdict = true
                case .failure(.noSuchFileOrDirectory): verdict = false
                case .failure: verdict = nil
                }
            case .success, .failure(.noSuchFileOrDirectory): verdict = false
            case .failure: verdict = nil
            }
            let stop = state.withLock { state -> Bool in
                if state.released { return true }
                switch verdict {
                case true?: state.lastRefresh = .now
                case false?: state.lost = true
                case nil: if ContinuousClock.now - state.lastRefresh > silenceLimit { state.lost = true }
                }
                return state.lost
            }
            if stop { return }
        }
    }

    /// Stops the heartbeat and removes the lease file if it still holds this owner's token. Idempotent.
    public func release() {
        let first = state.withLock { state -> Bool in
            defer { state.released = true }
            return !state.released
        }
        guard first else { return }
        wakeup.lock()
        wakeup.signal()
        wakeup.unlock()
        // Under the takeover file no taker is between its check and its removal, so the token read here
        // is still the file's when it is removed. Another process's takeover file is, almost always, the
        // previous holder's release still finishing (it removes its lease under that file, and this
        // lease may be taken in the moment before the file goes) or a taker that will find this lease
        // live and leave it: try again for a while, rather than leave a live-looking claim behind that
        // would block its key for a TTL. After that (a taker that judged this lease stale), leave it.
        var pause = 0.0005
        for _ in 0..<Lease.releaseAttempts {
            do {
                let ran = try Lease.withTakeoverFile(folder, name, record: record, ttl: ttl) {
                    (_) throws(CasketError) in
                    if isHeld() { _ = folder.remove(name) }
                }
                if ran { return }
            } catch {
                if isHeld() { _ = folder.remove(name) }  // the takeover file could not be made: best effort
                return
            }
            Thread.sleep(forTimeInterval: pause)
            pause = min(pause * 2, 0.05)
        }
    }

    /// How many times a release tries to take `<lease>.takeover` (about 1 s in all, see ``release()``).
    static let releaseAttempts = 24
}
