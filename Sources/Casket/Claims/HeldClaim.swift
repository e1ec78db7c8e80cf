/// A claim this process holds, kept alive by its lease's heartbeat until ``release()``.
public final class HeldClaim: Sendable {
    /// The claimed key.
    public let key: String
    /// The lease behind the claim.
    public let lease: Lease

    init(key: String, lease: Lease) {
        self.key = key
        self.lease = lease
    }

    deinit { release() }

    /// True when another worker took the claim over (this holder missed heartbeats for a whole TTL) or the
    /// claim file vanished: the work may then be done twice, and storing the result is still safe.
    public var lost: Bool { lease.isLost }

    /// Removes the claim file if it is still this holder's, and stops the heartbeat. Idempotent.
    public func release() { lease.release() }
}
