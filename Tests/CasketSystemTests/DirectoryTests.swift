import CasketSystem
import CasketTestSupport
import Foundation
import Testing

@Suite("Directory: the one door never follows a link")
struct DirectoryTests {
    @Test("a symbolic link to a folder is refused as unsafe, and nothing is created through it")
    func linkedFolderIsRefused() throws {
        let dir = try TemporaryDirectory()
        let outside = try TemporaryDirectory()
        try FileManager.default.createSymbolicLink(atPath: dir.path + "/blobs", withDestinationPath: outside.path)
        let root = try Directory.open(dir.path)
        let error = #expect(throws: CasketError.self) { try root.directory("blobs") }
        #expect(error?.code == .unsafePath)
        #expect(error?.message.contains("'\(dir.path)/blobs' is a symbolic link") == true)
        let made = #expect(throws: CasketError.self) { try root.makeDirectory("blobs") }
        #expect(made?.code == .unsafePath)
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty)
    }

    @Test("a symbolic link to a file is neither read nor appended to")
    func linkedFileIsRefused() throws {
        let dir = try TemporaryDirectory()
        let outside = try TemporaryDirectory()
        try Data("secret".utf8).write(to: URL(fileURLWithPath: outside.path + "/secret"))
        try FileManager.default.createSymbolicLink(
            atPath: dir.path + "/blob", withDestinationPath: outside.path + "/secret")
        let root = try Directory.open(dir.path)
        #expect(throws: CasketError.self) { _ = try root.openForReading("blob") }
        let append = #expect(throws: CasketError.self) { _ = try root.openForAppending("blob", create: true) }
        #expect(append?.code == .unsafePath)
        #expect(try String(contentsOfFile: outside.path + "/secret", encoding: .utf8) == "secret")
        #expect(root.status("blob").map(\.kind) == .success(.symbolicLink))
        // touch and remove act on the link itself.
        #expect(root.touch("blob").map { true } == .success(true))
        #expect(root.remove("blob").map { true } == .success(true))
        #expect(FileManager.default.fileExists(atPath: outside.path + "/secret"))
    }

    @Test("a FIFO is refused at once, without blocking on a writer")
    func fifoDoesNotHang() throws {
        let dir = try TemporaryDirectory()
        #expect(mkfifo(dir.path + "/pipe", 0o644) == 0)
        let root = try Directory.open(dir.path)
        let error = #expect(throws: CasketError.self) { _ = try root.openForReading("pipe") }
        #expect(error?.code == .notARegularFile)
        #expect(error?.message.contains("is a FIFO, not a regular file") == true)
    }

    @Test("names that are not one plain component are refused", arguments: ["", ".", "..", "a/b", "../x"])
    func pathLikeNamesAreRefused(_ name: String) throws {
        let dir = try TemporaryDirectory()
        let root = try Directory.open(dir.path)
        let error = #expect(throws: CasketError.self) { _ = try root.createExclusive(name) }
        #expect(error?.code == .unsafePath)
        #expect(root.remove(name).map { true } == .failure(.invalidArgument))
        // A NUL would end the C string early: "a\0b" must not become "a". (Not a test argument: a NUL in
        // the test's name would make the test log binary for grep.)
        #expect(throws: CasketError.self) { _ = try root.createExclusive(name + "a\u{0}b") }
    }

    @Test("a rename that must not replace fails with EEXIST and leaves both files")
    func renameNoReplace() throws {
        let dir = try TemporaryDirectory()
        let root = try Directory.open(dir.path)
        _ = try root.createExclusive("a")
        _ = try root.createExclusive("b")
        #expect(root.renameNoReplace("a", to: root, as: "b").map { true } == .failure(.fileExists))
        var names: [String: FileStatus.Kind?] = [:]
        try root.forEachEntry { (name, kind) throws(CasketError) in names[name] = kind }
        #expect(names.keys.sorted() == ["a", "b"])
    }
}
