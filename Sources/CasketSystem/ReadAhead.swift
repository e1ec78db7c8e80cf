import Foundation
import Synchronization

/// Reads a file sequentially on a second thread, one chunk ahead of its consumer, so that the copy out of
/// the page cache (the `read`) overlaps the consumer's work on the previous chunk (hashing, writing).
///
/// Two buffers take turns: the reader fills one while the consumer works on the other. Every hand-over
/// goes through a semaphore, which orders the buffer's bytes and its result between the two threads.
package final class ReadAhead: @unchecked Sendable {
    private let io: FileRef
    private let buffers: [UnsafeMutableRawBufferPointer]
    /// One result per buffer; raw memory, not an array, so that the two threads' accesses (ordered by the
    /// semaphores, never simultaneous on one slot) are not taken for conflicting accesses to one property.
    private let results: UnsafeMutablePointer<Result<Int, CasketError>>
    private let filled = DispatchSemaphore(value: 0)
    /// Created at 0 and signalled twice: libdispatch traps when a semaphore is released with a value below
    /// the one it was created with.
    private let free = DispatchSemaphore(value: 0)
    private let exited = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private var consumed = 0
    private var finished = false

    private let start: Int64
    private let length: Int64?

    /// Starts reading `io` in chunks of `chunk` bytes: from its current offset to its end, or, when
    /// `range` is given, exactly that range with `pread` (a short read is then an error: the file shrank).
    package init(_ io: FileRef, chunk: Int, range: (offset: Int64, length: Int64)? = nil) {
        self.io = io
        self.start = range?.offset ?? 0
        self.length = range?.length
        self.buffers = (0..<2).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64) }
        self.results = .allocate(capacity: 2)
        self.results.initialize(repeating: .success(0), count: 2)
        free.signal()
        free.signal()
        let thread = Thread { [self] in run() }
        thread.name = "casket-read-ahead"
        thread.start()
    }

    private func run() {
        var slot = 0
        var done: Int64 = 0
        while true {
            free.wait()
            if stopping.load(ordering: .acquiring) { break }
            let result: Result<Int, CasketError>
            do throws(CasketError) {
                if let length {
                    let want = Int(min(Int64(buffers[slot].count), length - done))
                    let n = try io.pread(
                        into: UnsafeMutableRawBufferPointer(rebasing: buffers[slot][..<want]), at: start + done)
                    guard n == want else {
                        throw CasketError(
                            .changedWhileReading, "'\(io.path)' shrank while bytes \(start)+\(length) were being read",
                            path: io.path)
                    }
                    done += Int64(n)
                    result = .success(n)
                } else {
                    result = .success(try io.readFully(into: buffers[slot]))
                }
            } catch {
                result = .failure(error)
            }
            results[slot] = result
            filled.signal()
            if case .success(let n) = result, n > 0 { slot ^= 1 } else { break }
        }
        exited.signal()
    }

    /// The next chunk, or `nil` at the end of the file. The chunk stays valid until the next call.
    package func next() throws(CasketError) -> UnsafeRawBufferPointer? {
        if consumed > 0 { free.signal() }  // the previous chunk's buffer can be refilled
        filled.wait()
        let slot = consumed & 1
        consumed += 1
        let n = try results[slot].get()
        return n == 0 ? nil : UnsafeRawBufferPointer(rebasing: buffers[slot][..<n])
    }

    /// Stops the reader thread and waits for it. Call exactly once, on every path.
    package func finish() {
        guard !finished else { return }
        finished = true
        stopping.store(true, ordering: .releasing)
        free.signal()
        exited.wait()
        buffers.forEach { $0.deallocate() }
        results.deinitialize(count: 2)
        results.deallocate()
    }
}
