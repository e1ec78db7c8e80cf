import Foundation

/// The thread that commits a write session's batch once it is due (docs/FORMAT.md 5.5, group commit), so a
/// session that writes once and then idles does not keep its lines in memory until its next write, flush or
/// close, as the Python client's timer does not either.
///
/// `fire` runs on this thread: it commits the batch if it is due and returns when the pending batch will be
/// due otherwise (`nil`: nothing pending). The thread ends at ``stop()``.
final class BatchTimer: @unchecked Sendable {
    private let wakeup = NSCondition()
    /// Under `wakeup`.
    private var due: ContinuousClock.Instant?
    private var stopped = false
    private let fire: () -> ContinuousClock.Instant?

    init(fire: @escaping () -> ContinuousClock.Instant?) {
        self.fire = fire
        let thread = Thread { [self] in run() }
        thread.name = "casket-batch-timer"
        thread.start()
    }

    /// Wakes the thread at `instant` (or earlier, if it was to wake earlier already).
    func schedule(_ instant: ContinuousClock.Instant) {
        wakeup.lock()
        if due.map({ instant < $0 }) ?? true { due = instant }
        wakeup.signal()
        wakeup.unlock()
    }

    /// Ends the thread; a `fire` already running finishes.
    func stop() {
        wakeup.lock()
        stopped = true
        wakeup.signal()
        wakeup.unlock()
    }

    private func run() {
        wakeup.lock()
        while !stopped {
            guard let at = due else {
                wakeup.wait()
                continue
            }
            let wait = at - ContinuousClock.now
            if wait > .zero {
                _ = wakeup.wait(until: Date(timeIntervalSinceNow: Double(wait.wholeNanoseconds) / 1e9))
                continue
            }
            due = nil
            // Never hold `wakeup` while `fire` takes the session's lock: the session schedules under it.
            wakeup.unlock()
            let next = fire()
            wakeup.lock()
            if let next, due == nil { due = next }
        }
        wakeup.unlock()
    }
}

/// The recursive lock of a write session's operations, under which its timer commits a batch (a session's
/// own operations call each other).
final class SessionLock: @unchecked Sendable {
    private let lock = NSRecursiveLock()

    func acquire() { lock.lock() }

    func release() { lock.unlock() }
}
