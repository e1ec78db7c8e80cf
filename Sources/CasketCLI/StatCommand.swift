import ArgumentParser
import Casket
import Foundation

/// `casket stat`.
struct StatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat",
        abstract: "Show what a store holds: blobs, bytes on disk, compressed share.",
        discussion: "With --json prints at least the fields blobs and blob_bytes."
    )

    @OptionGroup var options: StoreOptions

    func run() throws {
        let store = try options.openStore()
        let stats = try store.statistics()
        if options.json {
            Output.json([
                "store": store.root, "blobs": stats.blobs, "blob_bytes": stats.blobBytes,
                "compressed_blobs": stats.compressedBlobs, "compressed_bytes": stats.compressedBytes,
                "payload_bytes": stats.payloadBytes, "debris_files": stats.debrisFiles,
            ])
            return
        }
        let share = stats.blobs == 0 ? 0 : Double(stats.compressedBlobs) * 100 / Double(stats.blobs)
        print("store          \(store.root)")
        print("blobs          \(stats.blobs)")
        print("bytes on disk  \(Output.bytes(stats.blobBytes)) (\(stats.blobBytes) B)")
        print("payload bytes  \(Output.bytes(stats.payloadBytes)) (\(stats.payloadBytes) B)")
        print("compressed     \(stats.compressedBlobs) blobs (\(String(format: "%.1f", share)) %), \(Output.bytes(stats.compressedBytes))")
        if stats.debrisFiles > 0 { print("debris         \(stats.debrisFiles) files (temp files, unknown names)") }
    }
}
