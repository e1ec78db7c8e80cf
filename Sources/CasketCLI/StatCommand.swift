import ArgumentParser
import Casket
import Foundation

/// `casket stat`.
struct StatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat",
        abstract: "Show what a store holds: keys, entries, blobs, packed payloads, bytes on disk, compressed share.",
        discussion: """
            live_bytes counts the uncompressed bytes of the distinct blobs that live keys reference; \
            blob_bytes counts every blob file on disk (including blobs no key references any more, which \
            'casket gc' reclaims). blobs counts blob files; payloads kept in pack files are counted apart: \
            packs, packed (distinct payloads), pack_records, packed_bytes (their uncompressed bytes), \
            pack_bytes (pack and index files on disk). With --json prints at least keys, entries, \
            live_bytes, blobs, blob_bytes, packs, packed.
            """
    )

    @OptionGroup var options: StoreOptions

    func run() throws {
        let cache = CacheStore(blobs: try options.openStore())
        defer { IndexWarnings.report(cache) }
        let index = try cache.indexStatistics()
        let blobs = try cache.blobs.statistics()
        let packs = try cache.blobs.packShelf()?.census() ?? PackShelf.Census()
        if options.json {
            Output.json([
                "store": cache.blobs.root, "keys": index.keys, "entries": index.entries,
                "duplicate_entries": index.duplicateEntries, "deleted_keys": index.deletedKeys,
                "live_bytes": index.liveBytes, "logical_bytes": index.logicalBytes, "index_files": index.indexFiles,
                "malformed_lines": index.malformedLines, "blobs": blobs.blobs, "blob_bytes": blobs.blobBytes,
                "compressed_blobs": blobs.compressedBlobs, "compressed_bytes": blobs.compressedBytes,
                "payload_bytes": blobs.payloadBytes, "debris_files": blobs.debrisFiles, "packs": packs.packs,
                "sealed_packs": packs.sealedPacks, "packed": packs.payloads, "pack_records": packs.records,
                "packed_bytes": packs.payloadBytes, "pack_bytes": packs.fileBytes,
            ])
            return
        }
        let share = blobs.blobs == 0 ? 0 : Double(blobs.compressedBlobs) * 100 / Double(blobs.blobs)
        print("store             \(cache.blobs.root)")
        print("keys              \(index.keys) (\(index.deletedKeys) deleted)")
        print(
            "entries           \(index.entries) in \(index.indexFiles) index files, \(index.duplicateEntries) not winning"
        )
        print("live bytes        \(Output.bytes(index.liveBytes)) (\(index.liveBytes) B)")
        print("blobs             \(blobs.blobs)")
        print("bytes on disk     \(Output.bytes(blobs.blobBytes)) (\(blobs.blobBytes) B)")
        print(
            "compressed        \(blobs.compressedBlobs) blobs (\(String(format: "%.1f", share)) %), \(Output.bytes(blobs.compressedBytes))"
        )
        print(
            "packed            \(packs.payloads) payloads, \(Output.bytes(packs.payloadBytes)), in \(packs.packs) packs "
                + "(\(packs.sealedPacks) sealed), \(Output.bytes(packs.fileBytes)) on disk")
        if index.malformedLines > 0 { print("malformed lines   \(index.malformedLines)") }
        if blobs.debrisFiles > 0 { print("debris            \(blobs.debrisFiles) files (temp files, unknown names)") }
    }
}
