/// What a lease file says about its holder (docs/FORMAT.md, section 7): one compact JSON object.
///
/// `host`, `boot_id` and `pid_ns` say where `pid` means something: a taker may judge the holder dead by
/// its pid only when all three equal its own. Containers on one node can share a host name and a boot,
/// but not a PID namespace; two hosts with one name differ in boot id.
public struct LeaseRecord: Sendable, Equatable, CustomStringConvertible {
    /// The random owner token (32 hex digits). Release and the heartbeat check it: a holder never
    /// touches or removes a file that holds another owner's token.
    public var token: String
    /// The holder's sanitised host name.
    public var host: String
    /// The holder's pid in its PID namespace.
    public var pid: Int32
    /// The holder's `/proc/sys/kernel/random/boot_id`; empty when unknown.
    public var bootID: String
    /// The holder's PID namespace (`readlink /proc/self/ns/pid`, for example `pid:[4026531836]`); empty
    /// when unknown.
    public var pidNamespace: String
    /// When the holder took the lease, by its own clock (nanoseconds since the epoch; informative only:
    /// staleness is judged by the file's mtime).
    public var created: Int64
    /// The fields of the lease's user (a claim's `key`), written before the lease's own.
    public var fields: JSONObject

    static let knownFields: Set<String> = ["token", "host", "pid", "boot_id", "pid_ns", "created"]

    /// `pid 123 on node-b`.
    public var description: String { "pid \(pid) on \(host)" }

    /// A record naming this process, with a new token.
    static func mine(fields: JSONObject) -> LeaseRecord {
        LeaseRecord(
            token: HostIdentity.randomHex(bytes: 16), host: HostIdentity.host, pid: HostIdentity.pid,
            bootID: HostIdentity.bootID, pidNamespace: HostIdentity.pidNamespace,
            created: system_wallClockNanoseconds(), fields: fields)
    }

    init(
        token: String, host: String, pid: Int32, bootID: String, pidNamespace: String, created: Int64,
        fields: JSONObject
    ) {
        self.token = token
        self.host = host
        self.pid = pid
        self.bootID = bootID
        self.pidNamespace = pidNamespace
        self.created = created
        self.fields = fields
    }

    /// Parses a lease file; `nil` for anything that is not one (empty, truncated, another format): such
    /// a file is judged by its mtime alone.
    init?(parsing bytes: [UInt8]) {
        guard case .object(let object)? = try? JSONParser.parse(bytes), let token = object["token"]?.stringValue,
            !token.isEmpty, let host = object["host"]?.stringValue, let pid = object["pid"]?.intValue,
            let pid32 = Int32(exactly: pid)
        else { return nil }
        self.init(
            token: token, host: host, pid: pid32, bootID: object["boot_id"]?.stringValue ?? "",
            pidNamespace: object["pid_ns"]?.stringValue ?? "", created: object["created"]?.intValue ?? 0,
            fields: JSONObject(object.fields.filter { !LeaseRecord.knownFields.contains($0.key) }))
    }

    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        let own: [(key: String, value: JSONValue)] = [
            ("token", .string(token)), ("host", .string(host)), ("pid", .int(pid)), ("boot_id", .string(bootID)),
            ("pid_ns", .string(pidNamespace)), ("created", .int(created)),
        ]
        JSONValue.object(JSONObject(fields.fields + own)).encode(into: &out)
        out.append(0x0A)
        return out
    }

    /// Whether this record's pid can be looked up from here: same host name, same boot, same PID
    /// namespace, all known. Anywhere else a pid proves nothing.
    var pidIsComparable: Bool {
        host == HostIdentity.host && !bootID.isEmpty && bootID == HostIdentity.bootID && !pidNamespace.isEmpty
            && pidNamespace == HostIdentity.pidNamespace
    }
}
