/// The outcome of an attempt to take a lease.
public enum LeaseAttempt: Sendable {
    /// This process holds the lease now.
    case acquired(Lease)
    /// Another holder has it: live, or stale and being taken over by another taker right now.
    case busy(LeaseHolder)
}
