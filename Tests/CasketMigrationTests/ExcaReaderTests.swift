import Casket
import CasketTestSupport
import Foundation
import Testing

@testable import CasketMigration

/// Line handling and the winner rule on hand-written caches (no Python needed).
@Suite("exca reader")
struct ExcaReaderTests {
    static func write(_ path: String, _ text: String) throws {
        try TestFiles.write(path, Array(text.utf8))
    }

    @Test("a folder that is not an exca cache is refused, naming the cache folders found below it")
    func notACache() throws {
        try withTemporaryDirectory { root in
            let nested = root + "/pkg.Class.method,1/0123abcd"
            try FileManager.default.createDirectory(atPath: nested, withIntermediateDirectories: true)
            try Self.write(nested + "/h-1-info.jsonl", ##"{"content":1,"#type":"Json","#key":"k"}"## + "\n")
            let error = #expect(throws: CasketError.self) { try ExcaCache.read(at: root) }
            #expect(error?.code == .notFound)
            #expect(error?.message.contains("is not an exca cache folder") == true)
            #expect(error?.message.contains(nested) == true, "\(String(describing: error))")
            #expect(try ExcaCache.read(at: nested).keys == ["k"])
        }
    }

    @Test("blanked, partly blanked, unparsable middle and truncated last lines")
    func lineHandling() throws {
        try withTemporaryDirectory { root in
            try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
            try TestFiles.write(root + "/data/h-1.data", TestBytes.pattern(64))
            let a =
                ##"{"filename":"data/h-1.data","offset":3,"shape":[2],"dtype":">f4","#type":"MemmapArray","#key":"a"}"##
            let b = ##"{"content":{"x":1},"#type":"Json","#key":"b"}"##
            let b2 = ##"{"content":{"x":2},"#type":"Json","#key":"b"}"##
            let text = [
                a, String(repeating: " ", count: 40), " " + b.dropFirst(), "{not json", b, "", b2,
                ##"{"content":"trunc"##,
            ].joined(separator: "\n")
            try Self.write(root + "/h-1-info.jsonl", text)
            let cache = try ExcaCache.read(at: root)
            #expect(cache.keys == ["a", "b"])
            #expect(cache.warnings.count == 1)
            #expect(cache.warnings.first?.line == 4 && cache.warnings.first?.file == "h-1-info.jsonl")
            #expect(cache.copies["b"]?.first?.line == 7, "a later line of the same file overrides")
            let plan = try Migrator(source: root, destination: root + "/store").plan()
            #expect(
                plan.keys.first { $0.key == "a" }?.payloads.first
                    == PayloadSource(path: "data/h-1.data", offset: 3, length: 8, wholeFile: false))
        }
    }

    @Test("winner: first info file by name whose payload exists and is in range")
    func winnerRule() throws {
        try withTemporaryDirectory { root in
            try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
            try TestFiles.write(root + "/data/b.data", TestBytes.pattern(100))
            try TestFiles.write(root + "/data/c.data", TestBytes.pattern(100))
            func line(_ file: String, _ offset: Int) -> String {
                ##"{"filename":"data/\##(file).data","offset":\##(offset),"shape":[10],"dtype":"uint8","#type":"MemmapArray","#key":"k"}"##
                    + "\n"
            }
            try Self.write(root + "/a-info.jsonl", line("a", 0))  // missing file
            try Self.write(root + "/b-info.jsonl", line("b", 95))  // out of range
            try Self.write(root + "/c-info.jsonl", line("c", 5))
            try Self.write(root + "/d-info.jsonl", line("c", 7))
            let plan = try Migrator(source: root, destination: root + "/store").plan()
            #expect(plan.keys.count == 1 && plan.unmigratable.isEmpty)
            #expect(plan.keys[0].winner.file == "c-info.jsonl")
            #expect(plan.duplicateCopies == 3)
            try Self.write(root + "/c-info.jsonl", String(repeating: " ", count: 10) + "\n")
            try Self.write(root + "/d-info.jsonl", line("d", 0))
            let none = try Migrator(source: root, destination: root + "/store").plan()
            #expect(none.keys.isEmpty)
            #expect(none.unmigratable.first?.reason.hasPrefix("missing file 'data/a.data'") == true)
        }
    }

    @Test("legacy metadata= header with spaced JSON, String ranges and mixed types")
    func legacyHeader() throws {
        try withTemporaryDirectory { root in
            try TestFiles.write(root + "/h-2.txt", Array("\n<value>hello".utf8) + Array("\n<value>world!".utf8))
            try TestFiles.write(root + "/h-2.data", TestBytes.pattern(24))
            let text = """
                metadata={"cache_type": "String"}
                {"filename": "h-2.txt", "offset": 8, "length": 5, "#key": "s1"}
                {"filename": "h-2.txt", "offset": 21, "length": 6, "#key": "s2"}
                {"filename": "h-2.data", "offset": 0, "shape": [3], "dtype": "float64", "#key": "arr"}

                """
            try Self.write(root + "/h-2-info.jsonl", text)
            let plan = try Migrator(source: root, destination: root + "/store").plan()
            #expect(plan.keys.map(\.key) == ["arr", "s1", "s2"])
            #expect(plan.keys[0].winner.type == "MemmapArrayFile", "a mixed-in array line is typed by its fields")
            #expect(plan.keys[2].payloads == [PayloadSource(path: "h-2.txt", offset: 21, length: 6, wholeFile: false)])
        }
    }
}
