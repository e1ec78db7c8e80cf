import Casket
import CasketTestSupport
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Real exca caches written by Tools/exca-fixtures (the exca wheels from PyPI, each in its venv), generated
/// once per test run and shared: tests that change a cache copy it first.
enum ExcaFixtures {
    static let repository: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static let tools = repository + "/Tools/exca-fixtures"

    /// Whether python3 can run the generator (it creates or reuses venvs under ~/.cache/casket/venvs).
    static let pythonAvailable: Bool = {
        guard let out = try? runProgram("/usr/bin/env", ["python3", "-c", "import venv, sys; print(sys.version)"])
        else {
            return false
        }
        return out.status == 0
    }()

    struct Fixture: Sendable {
        var cache: String
        var expected: String
        var version: String
        var handlers: String
    }

    private static let base = try! TemporaryDirectory(prefix: "casket-exca-fixtures")
    private static let made = Mutex<[String: Fixture]>([:])
    private static let generating = NSLock()

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The fixture for these generator arguments, generated on first use, with exca's own values dumped.
    static func fixture(
        _ version: String, handlers: String = "core", writers: Int = 3, keys: Int = 3, extra: [String] = []
    ) throws -> Fixture {
        let name = ([version, handlers, "w\(writers)", "k\(keys)"] + extra).joined(separator: "_")
            .replacingOccurrences(of: "-", with: "")
        // One generation at a time: suites run in parallel, and two of them asking for the same fixture
        // must not write one folder together.
        generating.lock()
        defer { generating.unlock() }
        if let known = made.withLock({ $0[name] }) { return known }
        let folder = base.child(name)
        let cache = folder + "/cache"
        var arguments = [
            "python3", tools + "/generate.py", "--exca-version", version, "--out", cache, "--writers", "\(writers)",
            "--keys", "\(keys)",
        ]
        if version != "0.1.1" { arguments += ["--handlers", handlers] }
        let generated = try runProgram("/usr/bin/env", arguments + extra)
        guard generated.status == 0 else { throw Failure(description: "generate.py failed: \(generated)") }
        let expected = folder + "/expected.jsonl"
        let dumped = try runProgram(
            "/usr/bin/env",
            ["python3", tools + "/dump_expected.py", "--exca-version", version, "--cache", cache, "--out", expected])
        guard dumped.status == 0 else { throw Failure(description: "dump_expected.py failed: \(dumped)") }
        let fixture = Fixture(cache: cache, expected: expected, version: version, handlers: handlers)
        made.withLock { $0[name] = fixture }
        return fixture
    }

    /// A private copy of a fixture's cache (for tests that let the migrator delete or that tamper).
    static func copy(_ fixture: Fixture, to destination: String) throws {
        let out = try runProgram("/bin/cp", ["-a", fixture.cache, destination])
        guard out.status == 0 else { throw Failure(description: "cp failed: \(out)") }
    }

    /// Every regular file under `root` (the store's own folders at the root excluded) with its digest.
    static func checksums(_ root: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for relative in TestFiles.regularFiles(under: root) {
            let top = String(relative.split(separator: "/").first ?? "")
            if ["blobs", "tmp", "index", "casket.json", "gc", "quarantine", "claims", "packs"].contains(top) {
                continue
            }
            out[relative] = try BlobStore.digest(ofFileAt: root + "/" + relative).hex
        }
        return out
    }

    /// exca's values (`expected.jsonl`) and the values read from the store by the Python client
    /// (`casket.CacheDict`, through dump_casket.py in the same exca venv), by key.
    static func values(of fixture: Fixture, store: String) throws -> (
        expected: [String: String], actual: [String: String]
    ) {
        let actualPath = store + ".actual.jsonl"
        let out = try runProgram(
            "/usr/bin/env",
            [
                "python3", tools + "/dump_casket.py", "--exca-version", fixture.version, "--store", store, "--out",
                actualPath, "--handlers", fixture.version == "0.1.1" ? "core" : fixture.handlers,
            ])
        guard out.status == 0 else { throw Failure(description: "dump_casket.py failed: \(out)") }
        return (try lines(fixture.expected), try lines(actualPath))
    }

    /// A canon JSONL file as key -> the whole line.
    static func lines(_ path: String) throws -> [String: String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            guard let key = object?["key"] as? String else { continue }
            out[key] = String(line)
        }
        return out
    }

    /// The keys exca loads (a "value" line), and the keys it fails on.
    static func loadable(_ expected: [String: String]) -> (values: Set<String>, errors: Set<String>) {
        var values = Set<String>()
        var errors = Set<String>()
        for (key, line) in expected {
            if line.contains("\"value\":") && !line.hasPrefix("{\"key\":\(jsonString(key)),\"error\"") {
                values.insert(key)
            } else {
                errors.insert(key)
            }
        }
        return (values, errors)
    }

    static func jsonString(_ text: String) -> String {
        var out: [UInt8] = []
        JSONValue.string(text).encode(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Runs `casket migrate` and parses its --json output.
    static func migrate(_ arguments: [String]) throws -> (output: ProcessOutput, json: [String: Any]) {
        let out = try Casket.run(["migrate"] + arguments + ["--json"])
        let object = (try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8))) as? [String: Any] ?? [:]
        return (out, object)
    }

    /// Well-formed index lines per key, all index files together (a torn last line does not count).
    static func indexLinesPerKey(_ store: String) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for name in TestFiles.names(in: store + "/index") where name.hasSuffix(".jsonl") {
            let data = try Data(contentsOf: URL(fileURLWithPath: store + "/index/" + name))
            var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
            if data.last != 0x0A { lines.removeLast() }
            for line in lines where !line.isEmpty {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                    let key = object["key"] as? String
                else { continue }
                counts[key, default: 0] += 1
            }
        }
        return counts
    }
}
