/// What a claim file says about its holder (docs/CLAIMS.md).
public struct ClaimRecord: Sendable, Equatable {
    /// The key being computed.
    public var key: String
    /// The holder's host name.
    public var host: String
    /// The holder's process id on that host.
    public var pid: Int32
    /// A random token naming this claim.
    public var token: String
    /// When the holder took the claim (its clock), nanoseconds since the epoch.
    public var started: Int64
    /// The claim's generation: 0 for a first claim, n + 1 for a take-over of a stale generation n.
    public var generation: Int
    /// The claim file's mtime: the last heartbeat, in the file system's time.
    public var heartbeat: Int64

    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        JSONValue.object(
            JSONObject([
                ("key", .string(key)), ("host", .string(host)), ("pid", .int(pid)), ("token", .string(token)),
                ("started", .int(started)), ("generation", .int(generation)),
            ])
        ).encode(into: &out)
        out.append(0x0A)
        return out
    }

    init(key: String, host: String, pid: Int32, token: String, started: Int64, generation: Int, heartbeat: Int64) {
        self.key = key
        self.host = host
        self.pid = pid
        self.token = token
        self.started = started
        self.generation = generation
        self.heartbeat = heartbeat
    }

    init?(parsing bytes: [UInt8], heartbeat: Int64) {
        guard case .object(let object)? = try? JSONParser.parse(bytes), let key = object["key"]?.stringValue,
            let host = object["host"]?.stringValue, let pid = object["pid"]?.intValue,
            let token = object["token"]?.stringValue, let started = object["started"]?.intValue,
            let generation = object["generation"]?.intValue
        else { return nil }
        self.init(
            key: key, host: host, pid: Int32(clamping: pid), token: token, started: started,
            generation: Int(generation), heartbeat: heartbeat)
    }
}
