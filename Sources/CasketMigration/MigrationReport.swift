/// What a migration did.
public struct MigrationReport: Sendable {
    /// The plan it carried out.
    public var plan: MigrationPlan
    /// Keys whose entries this run wrote.
    public var keysMigrated = 0
    /// Keys skipped because an earlier run had migrated them from the same copy.
    public var skippedAlreadyMigrated = 0
    /// New blobs written.
    public var blobsWritten = 0
    /// Payloads already stored (content shared between keys, or an interrupted earlier run).
    public var blobsDeduplicated = 0
    /// Payload bytes read from the source.
    public var bytesRead: Int64 = 0
    /// Bytes of new blob files.
    public var bytesWritten: Int64 = 0
    /// Bytes of all blob files in the store afterwards.
    public var storeBytesAfter: Int64 = 0
    /// Wall time of the run, seconds.
    public var seconds: Double = 0
    /// Keys whose duplicate copies differ (only with `verifyDuplicates`).
    public var differingDuplicates: [String] = []
    /// Shards deleted by reclaim (info file names).
    public var reclaimedShards: [String] = []
    /// Shards kept by reclaim, with the reason.
    public var keptShards: [(shard: String, reason: String)] = []
    /// Source bytes deleted by reclaim.
    public var bytesReclaimed: Int64 = 0

    init(plan: MigrationPlan) { self.plan = plan }

    /// Source bytes on disk over unique bytes, before.
    public var inflationBefore: Double { plan.inflation }
    /// Store blob bytes over unique bytes, after.
    public var inflationAfter: Double {
        plan.uniqueBytes == 0 ? 0 : Double(storeBytesAfter) / Double(plan.uniqueBytes)
    }
    /// Payload bytes read per second.
    public var throughput: Double { seconds > 0 ? Double(bytesRead) / seconds : 0 }
}
