import CasketSystem
import Foundation

/// One `fdatasync` of a writer's open pack, run on another thread while the writer keeps appending to it
/// (group commit's batch flushed behind, docs/FORMAT.md 5.5), after the seals of the packs it filled since
/// the last one: made by ``PackWriter/flushBehind()``.
///
/// It keeps the pack it flushes alive, so the descriptor stays open however the writer moves on; the
/// writer never seals or abandons that pack before the flush has run (``PackWriter`` waits for it), so a
/// seal's own flush never hides this one's failure.
final class PackFlush: @unchecked Sendable {
    /// The pack whose descriptor `io` borrows: held only to keep it open.
    let pack: AnyObject?
    private let io: FileRef?
    /// The seals of the writer's full packs, run first (each returns its failure).
    private let seals: [() -> CasketError?]
    private let done = NSCondition()
    /// Under `done`: `nil` until ``run(before:)`` has returned, then its outcome.
    private var outcome: Result<Void, CasketError>?

    init(pack: AnyObject?, io: FileRef?, seals: [() -> CasketError?] = []) {
        self.pack = pack
        self.io = io
        self.seals = seals
    }

    /// Seals the full packs, then flushes the open one (on the thread that writes the batch's lines
    /// afterwards); the first failure ends it. `before` runs first and may fail the flush in its place: a
    /// test's hook.
    func run(before: (() throws(CasketError) -> Void)? = nil) -> CasketError? {
        let result: Result<Void, CasketError>
        do throws(CasketError) {
            try before?()
            for seal in seals { if let error = seal() { throw error } }
            try io?.sync(dataOnly: true)
            result = .success(())
        } catch {
            result = .failure(error)
        }
        done.lock()
        outcome = result
        done.broadcast()
        done.unlock()
        if case .failure(let error) = result { return error }
        return nil
    }

    /// Waits for ``run(before:)`` to have returned; its error, if it failed.
    func wait() -> CasketError? {
        done.lock()
        defer { done.unlock() }
        while outcome == nil { done.wait() }
        if case .failure(let error) = outcome { return error }
        return nil
    }
}
