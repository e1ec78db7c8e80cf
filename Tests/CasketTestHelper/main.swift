// casket-testhelper: load generator for the tests that need real, separate writer and reader processes.
//
//   casket-testhelper set-many STORE PREFIX COUNT SIZE START_NS   set PREFIX0..PREFIX{COUNT-1} after START_NS
//   casket-testhelper set-loop STORE PREFIX SIZE                   set keys until killed; print each committed key
//   casket-testhelper winners STORE                                print every key's winner, one line each
//   casket-testhelper set-flush STORE PREFIX SIZE                  set keys until killed, flush every 25; print the
//                                       number of the last key committed after each flush
//   casket-testhelper compute STORE TTL LOG COUNT SLEEP_MS START_NS
//                     getOrCompute over keys k0..k{COUNT-1} from START_NS; each computed key is appended to
//                     LOG as "key pid"; each batch computation sleeps SLEEP_MS; prints "ok N"
//   casket-testhelper make-old STORE PREFIX COUNT SIZE AGE_S       store PREFIX0.. as unreferenced blobs, mtime AGE_S ago
//   casket-testhelper churn STORE WRITER SECONDS OLD_PREFIX OLD_COUNT SIZE
//                                       set/overwrite/delete keys WRITER/0..49 for SECONDS, some to payloads of the
//                                       old blobs OLD_PREFIX0.. and to blobs this writer stored and aged itself;
//                                       prints "S key hash" / "D key" per committed operation
//   casket-testhelper hold-lock STORE SECONDS TTL_S                take the GC lock, print "held", hold it SECONDS
//   casket-testhelper bench-fill STORE BLOBS ENTRIES               write a large store directly (benchmark)
//   casket-testhelper pack-write STORE SIZE...                     append payloads p0.. of these sizes (odd ones compressible, p1 twice) to
//                                       one pack (LZ4 records where the store's compression says) and seal it;
//                                       print the pack id
//   casket-testhelper pack-loop STORE SIZE                         append payloads q0.. to packs until killed; print
//                                       "<pack> <hash>" per appended record (not flushed: a kill -9 keeps the page cache)
//   casket-testhelper pack-torn STORE                              append t0..t2, then the header and half the bytes of
//                                       t3 with one write; print "torn <pack>" and wait to be killed
//   casket-testhelper scale-write STORE N                          set s/0..s/{N-1} to distinct payloads of 200-1,000 bytes
//   casket-testhelper scale-read STORE N                           read them all back (benchmark: Tools/bench/scale.sh)
//   casket-testhelper session-bench STORE COUNT SIZE [writes]      write COUNT values of SIZE bytes through one session,
//                                       read them back (not with writes); print the rates (SessionBench.swift)
//   casket-testhelper pack-run-fail STORE LIMIT COUNT              set r0.. (4 KiB) with pack writes cut at LIMIT bytes
//                                       (RLIMIT_FSIZE): see PackRunFailure.swift
//   casket-testhelper append-fail STORE                            an index append that fails part-way (RLIMIT_FSIZE), then
//                                       more appends: see AppendFailure.swift
//
// Payloads are a deterministic function of the key, so every writer of a key writes the same bytes.

@_spi(Maintenance) import Casket
import CasketGC

#if canImport(Glibc)
import Glibc
#endif

func payload(for key: String, size: Int) -> [UInt8] {
    var state = Digest(hashing: Array(key.utf8)).low | 1
    var bytes = [UInt8](repeating: 0, count: size)
    for i in 0..<size {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        bytes[i] = UInt8(truncatingIfNeeded: state)
    }
    return bytes
}

func wallClock() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

func fail(_ message: String) -> Never {
    let line = "casket-testhelper: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

func run() throws {
    let args = CommandLine.arguments
    guard args.count >= 3 else { fail("usage: see the comment at the top of main.swift") }
    let cache = try CacheStore.open(at: args[2])
    switch args[1] {
    case "set-many":
        guard args.count == 7, let count = Int(args[4]), let size = Int(args[5]), let start = Int64(args[6]) else {
            fail("usage: set-many STORE PREFIX COUNT SIZE START_NS")
        }
        let payloads = (0..<count).map { payload(for: "\(args[3])\($0)", size: size) }
        while wallClock() < start { usleep(200) }
        let session = try cache.writeSession()
        for i in 0..<count { try session.set("\(args[3])\(i)", bytes: payloads[i]) }
        try session.close()
        print("done \(count)")
    case "set-loop":
        guard args.count == 5, let size = Int(args[4]) else { fail("usage: set-loop STORE PREFIX SIZE") }
        let session = try cache.writeSession()
        var i = 0
        while true {
            let key = "\(args[3])\(i)"
            let entry = try session.set(key, bytes: payload(for: key, size: size + i % 4096))
            // One write(2) per committed key, so a kill -9 never hides a line that was reported.
            let line = "\(key) \(entry.blobs[0].digest.hex)\n"
            _ = line.withCString { write(1, $0, strlen($0)) }
            i += 1
        }
    case "set-flush":
        guard args.count == 5, let size = Int(args[4]) else { fail("usage: set-flush STORE PREFIX SIZE") }
        let session = try cache.writeSession()
        var i = 0
        while true {
            let key = "\(args[3])\(i)"
            try session.set(key, bytes: payload(for: key, size: size + i % 1024))
            if i % 25 == 24 {
                try session.flush()
                let line = "\(i)\n"  // every key up to i is committed
                _ = line.withCString { write(1, $0, strlen($0)) }
            }
            i += 1
        }
    case "compute":
        guard args.count == 8, let ttl = Double(args[3]), let count = Int(args[5]), let sleepMs = Int(args[6]),
            let start = Int64(args[7])
        else { fail("usage: compute STORE TTL LOG COUNT SLEEP_MS START_NS") }
        let log = args[4]
        let board = try ClaimBoard(store: cache.blobs, ttl: .seconds(ttl))
        while wallClock() < start { usleep(200) }
        let keys = (0..<count).map { "k\($0)" }
        let values = try cache.getOrCompute(keys, board: board, timeout: 600) { mine in
            let fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0o644)
            for key in mine {
                let line = "\(key) \(getpid())\n"
                _ = line.withCString { write(fd, $0, strlen($0)) }
            }
            close(fd)
            usleep(UInt32(sleepMs * 1000))
            return Dictionary(uniqueKeysWithValues: mine.map { (IndexKey($0), payload(for: $0, size: 64)) })
        }
        for key in keys where values[IndexKey(key)] != payload(for: key, size: 64) { fail("wrong value for \(key)") }
        print("ok \(values.count)")
    case "winners":
        for entry in try cache.entries() {
            let blobs = entry.blobs.map(\.description).joined(separator: ",")
            print("\(entry.key)\t\(entry.timestamp)\t\(entry.origin)\t\(blobs)")
        }
    case "make-old":
        guard args.count == 7, let count = Int(args[4]), let size = Int(args[5]), let seconds = Int64(args[6]) else {
            fail("usage: make-old STORE PREFIX COUNT SIZE AGE_S")
        }
        let old = wallClock() - seconds * 1_000_000_000
        for i in 0..<count {
            let put = try cache.blobs.put(payload(for: "\(args[3])\(i)", size: size))
            age(cache.blobs, put.digest, to: old)
        }
    case "churn":
        guard args.count == 8, let seconds = Double(args[4]), let oldCount = Int(args[6]), let size = Int(args[7])
        else {
            fail("usage: churn STORE WRITER SECONDS OLD_PREFIX OLD_COUNT SIZE")
        }
        try churn(cache, writer: args[3], seconds: seconds, oldPrefix: args[5], oldCount: oldCount, size: size)
    case "hold-lock":
        guard args.count == 5, let seconds = Double(args[3]), let ttl = Double(args[4]) else {
            fail("usage: hold-lock STORE SECONDS TTL_S")
        }
        let lock = try GCLock.acquire(cache.blobs, ttl: .seconds(ttl), heartbeatInterval: .milliseconds(200))
        emit("held\n")
        usleep(UInt32(seconds * 1e6))
        lock.release()
    case "bench-fill":
        guard args.count == 5, let blobs = Int(args[3]), let entries = Int(args[4]) else {
            fail("usage: bench-fill STORE BLOBS ENTRIES")
        }
        try benchFill(cache.blobs, blobs: blobs, entries: entries)
    case "pack-write", "pack-loop", "pack-torn", "pack-view":
        try packCommand(args, cache.blobs)
    case "dedup-view":
        // A writer holding one view of packs/: a first set (a dedup hit that caches the packs), then, at a
        // line of its input, a second one, in the same process.
        guard args.count == 5 else { fail("usage: dedup-view STORE FIRST_FILE SECOND_FILE") }
        let session = try cache.writeSession()
        _ = try session.set("swift-first", fileAt: args[3])
        try session.flush()
        _ = "ready\n".withCString { write(1, $0, strlen($0)) }  // unbuffered: the test waits for it
        _ = readLine()
        _ = try session.set("swift-copy", fileAt: args[4])
        try session.close()
        print("done")
    case "pack-run-fail":
        guard args.count == 5, let limit = Int(args[3]), let count = Int(args[4]) else {
            fail("usage: pack-run-fail STORE LIMIT COUNT")
        }
        packRunFailure(cache, limit: limit, count: count)
    case "append-fail":
        try appendFailure(cache)
    case "scale-write", "scale-read":
        try scaleCommand(args, cache)
    case "session-bench":
        guard args.count == 5 || (args.count == 6 && args[5] == "writes"), let count = Int(args[3]),
            let size = Int(args[4])
        else { fail("usage: session-bench STORE COUNT SIZE [writes]") }
        try sessionBench(args[2], count: count, size: size, readBack: args.count == 5)
    default:
        fail("unknown command \(args[1])")
    }
}

func emit(_ line: String) {
    _ = line.withCString { write(1, $0, strlen($0)) }
}

/// Sets a blob's mtime (both forms) into the past, as if nobody had used it for a long time.
func age(_ store: BlobStore, _ digest: Digest, to nanoseconds: Int64) {
    for compressed in [false, true] {
        _ = store.files.setModificationTime(store.path(of: digest, compressed: compressed), nanoseconds)
    }
}

/// The I4 load: random sets, overwrites and deletes of this writer's keys, a share of them deduplicating
/// against old, unreferenced blobs, while garbage collections run.
func churn(_ cache: CacheStore, writer: String, seconds: Double, oldPrefix: String, oldCount: Int, size: Int) throws {
    let session = try cache.writeSession()
    let end = wallClock() + Int64(seconds * 1e9)
    var generator = SystemRandomNumberGenerator()
    var ownOld: [String] = []
    var counter = 0
    while wallClock() < end {
        counter += 1
        let key = "\(writer)/\(Int.random(in: 0..<50, using: &generator))"
        let roll = Int.random(in: 0..<100, using: &generator)
        var name: String? = nil
        switch roll {
        case 0..<35: name = "v/\(writer)/\(counter)"
        case 35..<50:
            try session.delete(key)
            emit("D \(key)\n")
            continue
        case 50..<75 where oldCount > 0: name = "\(oldPrefix)\(Int.random(in: 0..<oldCount, using: &generator))"
        case 75..<88:
            // A blob of this writer's own, stored without a key and made old: later reused (deduplicated).
            let own = "own/\(writer)/\(counter)"
            let put = try cache.blobs.put(payload(for: own, size: size))
            age(cache.blobs, put.digest, to: wallClock() - 3_600_000_000_000)
            ownOld.append(own)
            continue
        default: name = ownOld.randomElement(using: &generator) ?? "v/\(writer)/\(counter)"
        }
        let entry = try session.set(key, bytes: payload(for: name!, size: size))
        emit("S \(key) \(entry.blobs[0].digest.hex)\n")
    }
    try session.close()
}

/// Writes BLOBS tiny blob files and ENTRIES index lines directly (not through the write protocol), for
/// the garbage collection benchmark: entries 0..<BLOBS*9/10 reference blob i, the rest overwrite keys
/// 0.. with later entries referencing the same blobs, so one blob in ten is unreferenced.
func benchFill(_ store: BlobStore, blobs: Int, entries: Int) throws {
    var digests: [Digest] = []
    digests.reserveCapacity(blobs)
    var made = Set<String>()
    for i in 0..<blobs {
        var bytes = Array("blob \(i) ".utf8)
        bytes += [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: 32 + i % 64)
        let digest = Digest(hashing: bytes)
        digests.append(digest)
        let fanout = String(digest.hex.prefix(2))
        if made.insert(fanout).inserted { try store.files.makeDirectory(store.blobsDirectory + "/" + fanout) }
        let path = store.path(of: digest, compressed: false)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o444)
        if fd < 0 { fail("cannot create \(path)") }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if i % 100_000 == 0 { emit("blobs \(i)\n") }
    }
    let referenced = blobs * 9 / 10
    let files = 16
    let base = wallClock()
    for f in 0..<files {
        var out: [UInt8] = []
        out.reserveCapacity(entries / files * 200)
        for i in stride(from: f, to: entries, by: files) {
            let key = "bench/\(i % referenced)"
            let blob = i < referenced ? digests[i] : digests[i % referenced]
            let line =
                "{\"key\":\"\(key)\",\"ts\":\(base + Int64(i)),\"value\":{\"#type\":\"Bytes\",\"blob\":\"\(blob.hex)\","
                + "\"size\":\(40 + i % 64)},\"blobs\":[[\"\(blob.hex)\",\(40 + i % 64)]]}\n"
            out += Array(line.utf8)
        }
        out += Array("{\"sealed\":true,\"ts\":\(base + Int64(entries))}\n".utf8)
        let path = store.indexDirectory + "/bench-\(f)-00000000.jsonl"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = out.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
    emit("done \(blobs) blobs, \(entries) entries\n")
}

do {
    try run()
} catch {
    fail("\(error)")
}
