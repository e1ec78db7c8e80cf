import Casket
import CasketTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `casket get -o PATH` and `casket blob get -o PATH` against every kind of PATH, and killed mid-write
/// (issue 10, findings 4 and 21).
@Suite("casket get -o: what PATH is, and kill -9")
struct CLIOutputFileTests {
    /// A store holding one key `k` (and its blob) of `size` random bytes.
    struct Fixture {
        let dir: TemporaryDirectory
        var store: String { dir.child("store") }
        let bytes: [UInt8]
        let digest: Digest

        init(size: Int = 200_000, largeFile: Bool = false) throws {
            dir = try TemporaryDirectory()
            let input = dir.child("input")
            if largeFile {
                try TestBytes.writeLargeFile(input, size: size, seed: 21)
                bytes = []
            } else {
                bytes = TestBytes.random(size, seed: 4)
                try TestFiles.write(input, bytes)
            }
            digest = Digest(hashing: largeFile ? try TestFiles.read(input) : bytes)
            #expect(try CLI.run(["init", "--durability", "none", store]).status == 0)
            let set = try CLI.run(["set", "--store", store, "k", input])
            #expect(set.status == 0, "\(set)")
            try FileManager.default.createDirectory(atPath: dir.child("out"), withIntermediateDirectories: true)
        }

        /// Both commands that take -o, writing to `path`.
        func commands(_ path: String) -> [[String]] {
            [["get", "--store", store, "k", "-o", path], ["blob", "get", "--store", store, digest.hex, "-o", path]]
        }
    }

    static func fileType(_ path: String) -> mode_t? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return st.st_mode & S_IFMT
    }

    static func linkTarget(_ path: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: path)
    }

    /// The names in `folder` that are temp files of an export.
    static func debris(_ folder: String) -> [String] { TestFiles.names(in: folder).filter { $0.hasPrefix(".casket") } }

    @Test("-o FIFO: the bytes go through the FIFO to its reader, and the FIFO stays a FIFO")
    func fifo() throws {
        let f = try Fixture()
        for (n, command) in f.commands(f.dir.child("out/pipe")).enumerated() {
            let pipe = f.dir.child("out/pipe")
            unlink(pipe)
            try #require(mkfifo(pipe, 0o600) == 0)
            let received = f.dir.child("received-\(n)")
            let reader = try Child(
                executable: "/bin/sh", arguments: ["-c", "exec cat \"$0\" > \"$1\"", pipe, received])
            let output = try CLI.run(command)
            // A FIFO renamed away leaves its reader blocked for ever: give it a moment, then end it.
            let deadline = Date().addingTimeInterval(8)
            while reader.isRunning && Date() < deadline { usleep(10_000) }
            if reader.isRunning {
                reader.signal(SIGKILL)
            }
            _ = reader.wait()
            #expect(output.status == 0, "\(command): \(output)")
            #expect(try TestFiles.read(received) == f.bytes, "\(command): the reader got the payload")
            #expect(Self.fileType(pipe) == S_IFIFO, "\(command): still a FIFO")
            #expect(Self.debris(f.dir.child("out")).isEmpty)
        }
    }

    @Test("-o SYMLINK: refused naming the link; the link and the file it points to are unchanged")
    func symlink() throws {
        let f = try Fixture()
        let outside = f.dir.child("outside")
        try TestFiles.write(outside, Array("precious".utf8))
        let link = f.dir.child("out/link")
        try #require(Glibc.symlink(outside, link) == 0)
        for command in f.commands(link) {
            let output = try CLI.run(command)
            #expect(output.status == 1, "\(command): \(output)")
            #expect(output.stderr.contains("'\(link)' is a symbolic link"), "\(command): \(output)")
            #expect(try TestFiles.read(outside) == Array("precious".utf8), "the outside file is unchanged")
            #expect(Self.fileType(link) == S_IFLNK && Self.linkTarget(link) == outside, "the link is unchanged")
            #expect(Self.debris(f.dir.child("out")).isEmpty)
            let json = try CLI.run(command + ["--json"])
            #expect(json.status == 1 && json.stdout.contains("\"code\":\"not_a_regular_file\""), "\(json)")
            #expect(json.stdout.contains("\"path\":\"\(link)\""), "\(json)")
        }
        // A dangling link is refused too, and is not turned into a file.
        let dangling = f.dir.child("out/dangling")
        try #require(Glibc.symlink(f.dir.child("nowhere"), dangling) == 0)
        let output = try CLI.run(f.commands(dangling)[0])
        #expect(output.status == 1 && output.stderr.contains("'\(dangling)' is a symbolic link"), "\(output)")
        #expect(TestFiles.info(f.dir.child("nowhere")) == nil)
    }

    @Test("-o DIRECTORY and -o SOCKET: refused naming PATH, nothing touched")
    func directoryAndSocket() throws {
        let f = try Fixture()
        let folder = f.dir.child("out/folder")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let socket = f.dir.child("out/sock")
        let bind = try runProgram(
            "/usr/bin/python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", socket])
        try #require(bind.status == 0, "\(bind)")
        for (path, what) in [(folder, "is a directory"), (socket, "is a socket")] {
            for command in f.commands(path) {
                let output = try CLI.run(command)
                #expect(output.status == 1, "\(command): \(output)")
                #expect(output.stderr.contains("'\(path)' \(what)"), "\(command): \(output)")
                #expect(Self.debris(f.dir.child("out")).isEmpty && TestFiles.names(in: folder).isEmpty)
            }
        }
        #expect(Self.fileType(socket) == S_IFSOCK)
    }

    @Test(
        "-o a character device (a null device node made with mknod, never the machine's /dev/null): written through, still a device after",
        .enabled(if: TestFiles.isRoot, "mknod needs root"))
    func characterDevice() throws {
        let f = try Fixture()
        // A node of /dev/null's numbers inside the test folder, so that a broken build cannot replace the real one.
        let null = f.dir.child("out/null")
        try #require(mknod(null, S_IFCHR | 0o666, dev_t((1 << 8) | 3)) == 0)
        for command in f.commands(null) {
            let output = try CLI.run(command)
            #expect(output.status == 0, "\(command): \(output)")
            #expect(Self.fileType(null) == S_IFCHR, "\(command): still a character device")
            #expect(Self.debris(f.dir.child("out")).isEmpty)
        }
    }

    @Test("-o a device of a corrupt blob: the bytes went through, the exit code says the payload was corrupt")
    func corruptThroughFIFO() throws {
        let f = try Fixture()
        try TestFiles.flipByte(TestStore.rawPath(f.store, f.digest), at: 10)
        let pipe = f.dir.child("out/pipe")
        try #require(mkfifo(pipe, 0o600) == 0)
        let reader = try Child(executable: "/bin/sh", arguments: ["-c", "exec cat \"$0\" > /dev/null", pipe])
        let output = try CLI.run(f.commands(pipe)[0])
        let deadline = Date().addingTimeInterval(8)
        while reader.isRunning && Date() < deadline { usleep(10_000) }
        if reader.isRunning { reader.signal(SIGKILL) }
        _ = reader.wait()
        #expect(output.status == 1 && output.stderr.contains("expected hash \(f.digest.hex)"), "\(output)")
        #expect(Self.fileType(pipe) == S_IFIFO)
    }

    @Test("-o a regular file: replaced by rename only once verified; an absent PATH is created")
    func regularFile() throws {
        let f = try Fixture()
        let target = f.dir.child("out/file")
        try TestFiles.write(target, [1, 2, 3])
        // A second name for the old file: written in place, it would change; replaced by rename, it does not.
        try #require(link(target, f.dir.child("old")) == 0)
        for command in f.commands(target) {
            let output = try CLI.run(command)
            #expect(output.status == 0, "\(command): \(output)")
            #expect(try TestFiles.read(target) == f.bytes)
        }
        #expect(try TestFiles.read(f.dir.child("old")) == [1, 2, 3], "replaced by rename, not written in place")
        let fresh = f.dir.child("out/fresh")
        #expect(try CLI.run(f.commands(fresh)[1]).status == 0)
        #expect(try TestFiles.read(fresh) == f.bytes)
        #expect(Self.debris(f.dir.child("out")).isEmpty)
    }

    /// Whether `pid` holds a descriptor on a file inside `folder` (the export's temp file).
    static func writes(_ pid: Int32, into folder: String) -> Bool {
        let fds = "/proc/\(pid)/fd"
        for name in TestFiles.names(in: fds) {
            if let target = linkTarget(fds + "/" + name), target.hasPrefix(folder + "/") { return true }
        }
        return false
    }

    @Test("kill -9 of get -o while it writes leaves no temp file in PATH's folder", .timeLimit(.minutes(5)))
    func killedExport() throws {
        let f = try Fixture(size: 96 << 20, largeFile: true)
        let folder = f.dir.child("out")
        var landed = 0
        for round in 0..<12 where landed < 3 {
            for command in f.commands(folder + "/copy") {
                let child = try CLI.start(command)
                while child.isRunning && !Self.writes(child.pid, into: folder) { usleep(500) }
                if round % 2 == 1 { usleep(20_000) }
                child.signal(SIGKILL)
                let output = child.wait()
                if output.signalled { landed += 1 }
                #expect(Self.debris(folder).isEmpty, "\(command): left \(Self.debris(folder))")
                #expect(TestFiles.names(in: folder).allSatisfy { $0 == "copy" }, "\(TestFiles.names(in: folder))")
            }
        }
        #expect(landed >= 3, "the kills landed while the export ran")
    }

    /// This host's name as temp file names carry it (docs/FORMAT.md, section 4).
    static var sanitizedHost: String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, 255)
        let name = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return String(
            name.utf8.map { byte -> Character in
                let ok = (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
                return ok || byte == 45 || byte == 95 ? Character(UnicodeScalar(byte)) : "_"
            })
    }

    @Test("the next get -o into a folder removes export temp files whose writer is dead, and only those")
    func debrisRemoved() throws {
        let f = try Fixture()
        let folder = f.dir.child("out")
        // A pid that was this host's and is not any more.
        let gone = try runProgram("/bin/sh", ["-c", "echo $$"])
        let deadPID = Int32(gone.stdout.trimmingCharacters(in: .whitespacesAndNewlines))!
        let host = Self.sanitizedHost
        let dead = ".casket-export.\(host).\(deadPID).0123456789abcdef.tmp"
        let live = ".casket-export.\(host).\(getpid()).0123456789abcdef.tmp"
        let foreign = ".casket-export.otherhost.\(deadPID).0123456789abcdef.tmp"
        let unrelated = ".casket-export.notes.txt"
        for name in [dead, live, foreign, unrelated] { try TestFiles.write(folder + "/" + name, [9]) }
        let output = try CLI.run(f.commands(folder + "/copy")[0])
        #expect(output.status == 0, "\(output)")
        let names = Set(TestFiles.names(in: folder))
        #expect(!names.contains(dead), "the dead writer's temp file was removed: \(names)")
        #expect(names.isSuperset(of: [live, foreign, unrelated, "copy"]), "\(names)")
    }
}
