import Casket
import CasketTestSupport
import Foundation
import Testing

/// A writer whose append failed part-way never appends to that file again (docs/FORMAT.md 5.5): the
/// file keeps its partial final segment, which readers ignore, and the line is written in a new file.
@Suite("failed append: the writer continues in a new file")
struct AppendFailureTests {
    @Test("an append cut by RLIMIT_FSIZE: both later keys readable, no merged line, the first file untouched")
    func partialAppendAbandonsTheFile() throws {
        try withTemporaryDirectory { dir in
            let root = try TestStore.create(in: dir).root
            let out = try runProgram(try CLI.helper(), ["append-fail", root])
            #expect(out.status == 0, "\(out)")
            let report = try #require(
                try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any], "\(out)")
            #expect(report["outcomes"] as? [String] == ["ok", "ok"], "the failed line is written again elsewhere")
            let first = try #require(report["first"] as? String)
            let limit = try #require(report["limit"] as? Int)
            #expect(report["after_failure"] as? String != first, "a new writer file after the failure")
            let firstBytes = try TestFiles.read(root + "/index/" + first + ".jsonl")
            #expect(firstBytes.count == limit, "never appended to after the failure (not even a seal)")
            #expect(firstBytes.last != 0x0A, "it ends with the partial line")
            #expect(firstBytes.filter { $0 == 0x0A }.count == 1, "one whole line: k0")
            let cache = try CacheStore.open(at: root)
            #expect(try cache.keys() == ["k0", "k1", "k2"])
            for key in ["k0", "k1", "k2"] { #expect(try cache.get(key).count == 100, "\(key)") }
            #expect(cache.issues.isEmpty, "no line merged with the broken one: \(cache.issues)")
        }
    }
}
