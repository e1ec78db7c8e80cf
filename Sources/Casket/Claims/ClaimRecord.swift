/// A claim file as it was seen: the key it names and the lease behind it (docs/FORMAT.md, section 8).
public struct ClaimRecord: Sendable, CustomStringConvertible {
    /// The claim file.
    public var path: String { lease.path }
    /// The key being computed; `nil` when the file is unreadable (empty, truncated, not a record).
    public var key: String?
    /// The lease: holder (if readable), heartbeat, age and staleness.
    public var lease: LeaseHolder

    /// The holder's host name, if the file is readable.
    public var host: String? { lease.record?.host }
    /// The holder's pid on its host, if the file is readable.
    public var pid: Int32? { lease.record?.pid }
    /// Since the last heartbeat, in file-system time.
    public var age: Duration { lease.age }
    /// Whether the next worker that wants the key may take the claim over.
    public var isStale: Bool { lease.isStale }

    /// `'rec/17' (pid 123 on node-b)`.
    public var description: String { "\(key.map { "'\($0)'" } ?? "an unknown key") (\(lease))" }

    init(_ lease: LeaseHolder) {
        self.lease = lease
        self.key = lease.record?.fields["key"]?.stringValue
    }
}
