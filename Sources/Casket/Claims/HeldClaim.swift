import Foundation
import Synchronization

/// A claim this process holds, kept alive by a heartbeat thread until ``release()``.
public final class HeldClaim: Sendable {
    /// The claimed key.
    public let key: String
    /// The claim's generation.
    public let generation: Int
    let path: String
    let token: String
    let board: ClaimBoard
    private let state = Mutex<State>(State())
    private let wakeup = NSCondition()

    private struct State {
        var released = false
        var lost = false
    }

    init(board: ClaimBoard, key: String, generation: Int, path: String, token: String) {
        self.board = board
        self.key = key
        self.generation = generation
        self.path = path
        self.token = token
        let interval = max(Double(board.ttlNanoseconds) / 4e9, 0.05)
        let thread = Thread { [self] in heartbeatLoop(interval: interval) }
        thread.name = "casket-claim-heartbeat"
        thread.start()
    }

    deinit { release() }

    /// True when another worker took the claim over (this holder missed heartbeats for a whole TTL) or the
    /// claim file vanished: the work may then be done twice, and storing the result is still safe.
    public var lost: Bool { state.withLock { $0.lost } }

    private func heartbeatLoop(interval: Double) {
        while true {
            wakeup.lock()
            _ = wakeup.wait(until: Date(timeIntervalSinceNow: interval))
            wakeup.unlock()
            if state.withLock({ $0.released }) { return }
            // A higher generation means a take-over; a missing file means the claim is gone.
            let taken = system_stat(board.path(key, generation: generation + 1))
            if case .success = taken { state.withLock { $0.lost = true } }
            if case .failure = system_touch(path) { state.withLock { $0.lost = true } }
        }
    }

    /// Removes the claim (and the stale generations below it) and stops the heartbeat. Idempotent.
    public func release() {
        let first = state.withLock { state -> Bool in
            defer { state.released = true }
            return !state.released
        }
        guard first else { return }
        wakeup.lock()
        wakeup.signal()
        wakeup.unlock()
        // Highest generation first, so a lower stale one never looks free while this one still exists.
        // The token check keeps a holder that lost its claim from removing a successor's file.
        if let record = try? board.read(path), record.token == token { _ = system_unlink(path) }
        guard generation > 0, let now = try? board.store.fileSystemNow() else { return }
        for lower in stride(from: generation - 1, through: 0, by: -1) {
            let lowerPath = board.path(key, generation: lower)
            if let record = try? board.read(lowerPath), now - record.heartbeat >= board.ttlNanoseconds {
                _ = system_unlink(lowerPath)
            }
        }
    }
}
