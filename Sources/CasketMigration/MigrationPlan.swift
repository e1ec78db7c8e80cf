public import Casket

/// An entry that cannot be migrated, and why.
public struct UnmigratableEntry: Sendable, CustomStringConvertible {
    /// The key.
    public var key: String
    /// The info file (or `.key` file) of the copy that was examined first.
    public var file: String
    /// Its line.
    public var line: Int
    /// Why: missing file, offset out of range, object or structured dtype, unknown type, a path that would
    /// leave the cache folder or a file that is not a plain regular file...
    public var reason: String
    /// The kind of failure (`not_found`, `unsafe_path`, `not_a_regular_file`, `unsupported_value`...).
    public var code: CasketError.Code

    /// `'key' (file:line): reason`, the key escaped and shortened.
    public var description: String { "\(KeyDisplay.quoted(key)) (\(file):\(line)): \(reason)" }
}

/// The copy of a key chosen for migration, translated to a Casket value.
public struct PlannedKey: Sendable {
    /// The key.
    public var key: String
    /// The winning copy.
    public var winner: ExcaLine
    /// The other copies (not read unless duplicates are verified).
    public var losers: [ExcaLine]
    /// The payloads to store, in placeholder order.
    public var payloads: [PayloadSource]
    /// True when the store already holds this key from this very copy (a finished earlier run).
    public var alreadyMigrated: Bool
    var converted: Converted

    /// The `meta` written with the entry, and what a rerun compares to skip it.
    public var meta: JSONValue {
        .object(
            JSONObject([
                ("migrated_from", .object(JSONObject([("file", .string(winner.file)), ("line", .int(winner.line))])))
            ]))
    }
}

/// What a migration would do (and, after a dry run, all that is done).
public struct MigrationPlan: Sendable {
    /// The source as read.
    public var cache: ExcaCache
    /// One winner per migratable key, sorted by key.
    public var keys: [PlannedKey]
    /// Keys none of whose copies can be migrated.
    public var unmigratable: [UnmigratableEntry]
    /// Live entries (one per key and info file).
    public var entries: Int
    /// Copies beyond the first of each key.
    public var duplicateCopies: Int
    /// Bytes of every file of the source (the store's own folders excluded).
    public var bytesOnDisk: Int64
    /// Bytes of the distinct payload ranges of the winners.
    public var uniqueBytes: Int64
    /// Of those, the bytes of keys not yet migrated: what a run reads and writes.
    public var bytesToWrite: Int64
    /// Keys already migrated by an earlier run.
    public var alreadyMigrated: Int
    /// The identity of every payload file the plan judged sound: the run reads, and reclaim deletes, a file
    /// only while its name still names that file.
    var identities: [IndexKey: FileStatus] = [:]

    /// Bytes on disk over unique bytes.
    public var inflation: Double { uniqueBytes == 0 ? 0 : Double(bytesOnDisk) / Double(uniqueBytes) }
}
