// casket-testhelper: load generator for the tests that need real, separate writer and reader processes.
//
//   casket-testhelper set-many STORE PREFIX COUNT SIZE START_NS   set PREFIX0..PREFIX{COUNT-1} after START_NS
//   casket-testhelper set-loop STORE PREFIX SIZE                   set keys until killed; print each committed key
//   casket-testhelper winners STORE                                print every key's winner, one line each
//   casket-testhelper compute STORE TTL LOG COUNT SLEEP_MS START_NS
//                     getOrCompute over keys k0..k{COUNT-1} from START_NS; each computed key is appended to
//                     LOG as "key pid"; each batch computation sleeps SLEEP_MS; prints "ok N"
//
// Payloads are a deterministic function of the key, so every writer of a key writes the same bytes.

import Casket

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
    case "compute":
        guard args.count == 8, let ttl = Double(args[3]), let count = Int(args[5]), let sleepMs = Int(args[6]),
            let start = Int64(args[7])
        else { fail("usage: compute STORE TTL LOG COUNT SLEEP_MS START_NS") }
        let log = args[4]
        let board = ClaimBoard(store: cache.blobs, ttlSeconds: ttl)
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
            return Dictionary(uniqueKeysWithValues: mine.map { ($0, payload(for: $0, size: 64)) })
        }
        for key in keys where values[key] != payload(for: key, size: 64) { fail("wrong value for \(key)") }
        print("ok \(values.count)")
    case "winners":
        for entry in try cache.entries() {
            let blobs = entry.blobs.map(\.description).joined(separator: ",")
            print("\(entry.key)\t\(entry.timestamp)\t\(entry.origin)\t\(blobs)")
        }
    default:
        fail("unknown command \(args[1])")
    }
}

do {
    try run()
} catch {
    fail("\(error)")
}
