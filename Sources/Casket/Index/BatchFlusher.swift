import CasketSystem
import Foundation

/// The thread that writes a write session's full batch while the session fills the next one (group commit
/// flushed behind, docs/FORMAT.md 5.5), as the Python client's writer thread does: the batch's pack flush
/// and the write and flush of its lines no longer stop the session's writes.
///
/// One batch at a time: the session takes the outcome of the batch being written (``wait()``) before it
/// hands over the next (``submit(_:)``), so at most two batches are in memory and a crash loses at most
/// those two, none of which was reported committed. The thread ends at ``stop()``.
final class BatchFlusher: @unchecked Sendable {
    /// Why a batch written behind was not committed.
    enum Failure {
        /// The flush of the session's pack failed: the batch's lines were not written.
        case pack(CasketError)
        /// The write or flush of the lines failed (the file may end with part of them).
        case index(CasketError)
    }

    /// What the thread runs: a batch's flushes and write, `nil` when they all succeeded.
    typealias Job = () -> Failure?

    private let wakeup = NSCondition()
    /// Under `wakeup`: the job handed over and not started, whether one is running, the outcome of the
    /// last one run (until ``wait()`` takes it).
    private var job: Job?
    private var running = false
    private var outcome: Failure?
    private var stopped = false

    init() {
        let thread = Thread { [self] in run() }
        thread.name = "casket-batch-flusher"
        thread.start()
    }

    /// Hands a batch to the thread; the caller has taken the previous outcome (``wait()``). Once stopped,
    /// the job runs at once, on the caller's thread.
    func submit(_ next: @escaping Job) {
        wakeup.lock()
        guard !stopped else {
            wakeup.unlock()
            let failure = next()
            wakeup.lock()
            outcome = failure
            wakeup.unlock()
            return
        }
        job = next
        wakeup.broadcast()
        wakeup.unlock()
    }

    /// Waits for the job handed over to have run, and takes its outcome (`nil`: it succeeded, or there was
    /// none).
    func wait() -> Failure? {
        wakeup.lock()
        defer { wakeup.unlock() }
        while job != nil || running { wakeup.wait() }
        let taken = outcome
        outcome = nil
        return taken
    }

    /// Whether no job is waiting or running (a job may end just after a `false`).
    var idle: Bool {
        wakeup.lock()
        defer { wakeup.unlock() }
        return job == nil && !running
    }

    /// Ends the thread once the job handed over, if any, has run.
    func stop() {
        wakeup.lock()
        stopped = true
        wakeup.broadcast()
        wakeup.unlock()
    }

    private func run() {
        wakeup.lock()
        while true {
            guard let next = job else {
                if stopped { break }
                wakeup.wait()
                continue
            }
            job = nil
            running = true
            wakeup.unlock()
            let failure = next()
            wakeup.lock()
            outcome = failure
            running = false
            wakeup.broadcast()
        }
        wakeup.unlock()
    }
}
