import ArgumentParser
import Foundation
import Casket

/// Options every command that works on a store takes.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The store folder (default: $CASKET_STORE, then the current folder).")
    var store: String?

    @Flag(name: .long, help: "Print machine-readable JSON on standard output.")
    var json = false

    /// The store folder chosen by the precedence --store, $CASKET_STORE, current folder.
    var storePath: String {
        if let store { return store }
        if let env = ProcessInfo.processInfo.environment["CASKET_STORE"], !env.isEmpty { return env }
        return "."
    }

    func openStore() throws(CasketError) -> BlobStore { try BlobStore.open(at: storePath) }
}
