@_spi(Maintenance) import Casket
import CasketTestSupport
import Foundation
import Testing

/// The maintenance tools' file effects by store path: nothing outside the root, no link followed.
@Suite("StoreFiles: maintenance file effects stay in the store")
struct StoreFilesTests {
    @Test("a path outside the root, or with '..', is refused before any system call")
    func outsidePathsAreRefused() throws {
        let dir = try TemporaryDirectory()
        let store = try TestStore.create(in: dir.path)
        try TestFiles.write(dir.child("victim"), [1, 2, 3])
        for path in [dir.child("victim"), store.root + "/../victim", store.root + "/tmp/../../victim"] {
            #expect(store.files.status(path) == nil, "\(path)")
            #expect(store.files.unlink(path).map { true } == .failure(.invalidArgument), "\(path)")
            let error = #expect(throws: CasketError.self) { _ = try store.files.read(path) }
            #expect(error?.code == .unsafePath, "\(path)")
        }
        #expect(try TestFiles.read(dir.child("victim")) == [1, 2, 3])
    }

    @Test(
        "a linked tmp/ or fan-out folder is never listed, touched or emptied through", arguments: ["tmp", "blobs/00"])
    func linkedFoldersAreNotFollowed(_ folder: String) throws {
        let dir = try TemporaryDirectory()
        let root = try TestStore.create(in: dir.path).root
        let outside = dir.child("outside")
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try TestFiles.write(outside + "/old.tmp", [9])
        try FileManager.default.removeItem(atPath: root + "/" + folder)
        try FileManager.default.createSymbolicLink(atPath: root + "/" + folder, withDestinationPath: outside)
        // Opened after the link was planted, as the next GC run would.
        let store = try BlobStore.open(at: root)
        let inside = store.root + "/" + folder + "/old.tmp"
        #expect(store.files.status(inside) == nil)
        #expect(throws: Errno.self) { try store.files.unlink(inside).get() }
        #expect(throws: Errno.self) { try store.files.touch(inside).get() }
        #expect(throws: Errno.self) { try store.files.setModificationTime(inside, 0).get() }
        let listing = #expect(throws: CasketError.self) {
            try store.files.forEachEntry(in: store.root + "/" + folder) { (_, _) throws(CasketError) in }
        }
        #expect(listing?.code == .unsafePath)
        #expect(store.files.status(store.root + "/" + folder)?.kind == .symbolicLink)
        #expect(try TestFiles.read(outside + "/old.tmp") == [9])
    }
}
