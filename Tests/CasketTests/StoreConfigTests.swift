import Casket
import CasketTestSupport
import Foundation
import Testing

/// One validation of `casket.json` (docs/FORMAT.md section 2), checked through the `casket` binary against
/// the table the Python tests read too, so that the two implementations cannot drift.
@Suite("casket.json validation")
struct StoreConfigTests {
    /// `Tools/python/conformance/configs.json`.
    static func table() throws -> [String: Any] {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tools/python/conformance/configs.json")
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as? [String: Any])
    }

    /// Writes `text` as the `casket.json` of a new folder and runs `casket stat --json` on it.
    static func open(_ item: [String: Any], in dir: TemporaryDirectory, _ name: String) throws -> (
        ProcessOutput, [String: Any]
    ) {
        let root = dir.child(name)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let bom: [UInt8] = item["bom"] as? Bool == true ? [0xEF, 0xBB, 0xBF] : []
        try TestFiles.write(root + "/casket.json", bom + Array(try #require(item["text"] as? String).utf8))
        let output = try CLI.run(["stat", "--json", "--store", root])
        let line = output.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
        return (output, object)
    }

    @Test("every invalid casket.json is refused with its code, naming the file and the field")
    func invalidConfigsAreRefused() throws {
        let dir = try TemporaryDirectory()
        let cases = try #require(try Self.table()["invalid"] as? [[String: Any]])
        #expect(cases.count > 30)
        for (i, item) in cases.enumerated() {
            let name = try #require(item["name"] as? String)
            let (output, object) = try Self.open(item, in: dir, "s\(i)")
            let error = object["error"] as? [String: Any] ?? [:]
            #expect(output.status == 1, "\(name): \(output)")
            #expect(error["code"] as? String == item["code"] as? String, "\(name): \(output)")
            let message = error["message"] as? String ?? ""
            #expect(message.contains(dir.child("s\(i)") + "/casket.json"), "\(name) names the file: \(message)")
            if let field = item["field"] as? String {
                #expect(message.contains("\"\(field)\""), "\(name) names the field: \(message)")
            }
        }
    }

    @Test("valid casket.json texts open with the settings they give")
    func validConfigsOpen() throws {
        let dir = try TemporaryDirectory()
        let cases = try #require(try Self.table()["valid"] as? [[String: Any]])
        for (i, item) in cases.enumerated() {
            let root = dir.child("v\(i)")
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try TestFiles.write(root + "/casket.json", Array(try #require(item["text"] as? String).utf8))
            let store = try BlobStore.open(at: root)
            #expect(store.config.compression.rawValue == item["compression"] as? String, "\(item)")
            #expect(store.config.durability.rawValue == item["durability"] as? String, "\(item)")
            #expect(store.config.inlineMax == item["inline_max"] as? Int, "\(item)")
            #expect(store.config.chunksMin == (item["chunks_min"] as? NSNumber)?.int64Value, "\(item)")
            #expect(store.config.packMax == item["pack_max"] as? Int, "\(item)")
            #expect(store.config.packSize == (item["pack_size"] as? NSNumber)?.int64Value, "\(item)")
        }
    }
}
