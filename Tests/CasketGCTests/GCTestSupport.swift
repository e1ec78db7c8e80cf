import Casket
import CasketTestSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Running `casket gc` / `casket fsck` and reading their JSON.
enum GCRun {
    /// Runs casket with `arguments` and parses its standard output as one JSON object.
    static func json(_ arguments: [String]) throws -> (status: Int32, object: [String: Any], output: ProcessOutput) {
        let out = try Casket.run(arguments + ["--json"])
        let line = out.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
        return (out.status, object, out)
    }

    static func int(_ object: [String: Any], _ key: String) -> Int { (object[key] as? NSNumber)?.intValue ?? -1 }

    /// Wall-clock seconds since the epoch.
    static var now: Int { Int(Date().timeIntervalSince1970) }

    /// Every blob digest found under blobs/ (both forms), and the names of files left aside by a collector.
    static func blobDigests(_ root: String) -> (digests: Set<String>, aside: [String]) {
        var digests = Set<String>()
        var aside: [String] = []
        for relative in TestStore.blobFiles(root) {
            let name = String(relative.split(separator: "/").last ?? "")
            if name.hasPrefix(".gc-aside.") {
                aside.append(relative)
            } else {
                digests.insert(name.hasSuffix(".lz4") ? String(name.dropLast(4)) : name)
            }
        }
        return (digests, aside)
    }

    /// Blob digests referenced by live keys.
    static func referenced(_ root: String) throws -> Set<String> {
        let cache = try CacheStore.open(at: root)
        return Set(try cache.entries().flatMap { $0.blobs.map(\.digest.hex) })
    }

    /// Waits until a file contains `text` (a child reporting readiness), up to `seconds`.
    static func waitFor(_ text: String, in path: String, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let content = try? String(contentsOfFile: path, encoding: .utf8), content.contains(text) { return true }
            usleep(20_000)
        }
        return false
    }
}
