@_spi(Maintenance) public import Casket
import Foundation

/// The reports kept in `gc/reports/`, one JSON file per run, named by mark start so they sort by time.
public struct ReportArchive {
    let store: BlobStore

    /// Opens the archive of a store.
    public init(store: BlobStore) { self.store = store }

    var directory: String { store.gcDirectory + "/reports" }

    /// Saves a report atomically and prunes the oldest beyond `keep`; returns the saved path.
    @discardableResult
    public func save(_ report: GCReport, keep: Int) throws(CasketError) -> String {
        try store.files.makeDirectory(store.gcDirectory)
        try store.files.makeDirectory(directory)
        var stamp = String(max(0, report.markStart))
        stamp = String(repeating: "0", count: max(0, 20 - stamp.count)) + stamp
        let path = directory + "/\(stamp)-\(report.host)-\(StoreFiles.randomHex(bytes: 4)).json"
        var saved = report
        saved.savedAs = path
        // Through a temp file in gc/ itself: tmp/ holds only the temp files of blobs (FORMAT.md 4), and GC
        // removes `gc/*.tmp` left by a killed run once older than the grace.
        try store.files.writeAtomically(path, saved.encoded())
        let names = try names()
        for name in names.dropLast(max(0, keep)) { _ = store.files.unlink(directory + "/" + name) }
        return path
    }

    func names() throws(CasketError) -> [String] {
        guard store.files.status(directory) != nil else { return [] }
        var names: [String] = []
        try store.files.forEachName(in: directory) { (name) throws(CasketError) in
            if name.hasSuffix(".json") { names.append(name) }
        }
        return names.sorted()
    }

    /// Every saved report, oldest first (unreadable files are skipped).
    public func reports() throws(CasketError) -> [GCReport] {
        var out: [GCReport] = []
        for name in try names() {
            guard let bytes = try? store.files.read(directory + "/" + name),
                let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
            else { continue }
            var report = GCReport(jsonObject: object)
            report.savedAs = directory + "/" + name
            out.append(report)
        }
        return out
    }
}
