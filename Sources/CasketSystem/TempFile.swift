/// A uniquely named file in the store's `tmp/` folder that removes itself unless it was published.
///
/// Named `<host>.<pid>.<random>.tmp` (docs/FORMAT.md, section 4), so that a leftover from a killed
/// process is recognisable as debris and GC can remove it by age.
package struct TempFile: ~Copyable {
    package let handle: FileHandle
    package var path: String { handle.path }
    private var published = false

    package static let suffix = ".tmp"

    package init(in directory: String) throws(CasketError) {
        let name = "\(HostIdentity.host).\(HostIdentity.pid).\(HostIdentity.randomHex(bytes: 8))\(TempFile.suffix)"
        // Mode 0444 from the start: the descriptor is writable anyway, and a published blob must be read-only.
        handle = try FileHandle.createExclusive(directory + "/" + name, mode: 0o444)
    }

    /// Records that the file now lives under another name (or was removed), so deinit leaves it alone.
    package mutating func markGone() { published = true }

    deinit {
        if !published { _ = system_unlink(handle.path) }
    }
}
