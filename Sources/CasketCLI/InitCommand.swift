public import ArgumentParser
public import Casket

extension StoreConfig.Compression: ExpressibleByArgument {}
extension StoreConfig.Durability: ExpressibleByArgument {}

/// `casket init DIR`.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a store in a folder.",
        discussion: """
            Creates DIR if needed, writes DIR/casket.json (format version, hash, compression, durability, \
            pack settings) and the store's folders. Refuses a folder that is already a store. By default \
            the store is of format version 2, packs payloads below --pack-max and commits in groups; \
            --pack-max 0 makes a version 1 store, which older releases read.
            """
    )

    @Argument(help: "The folder to make a store of.")
    var directory: String

    @Option(help: "How new blobs are kept: none (raw, memory-mappable) or lz4 (when it saves 10 % or more).")
    var compression: StoreConfig.Compression = .none

    @Option(
        help:
            "group (flush once per batch of lines, the default), fsync (flush every write) or none (fast, for scratch stores)."
    )
    var durability: StoreConfig.Durability = .group

    @Option(help: "Inline payloads of at most this many bytes in index entries (0: never).")
    var inlineMax: Int = 0

    @Option(help: "Give blobs of at least this many bytes chunk digests, for verified window reads (default 4194304).")
    var chunksMin: Int64 = ChunkDigests.defaultMinimum

    @Option(
        help:
            "Append payloads of fewer bytes to pack files (default \(StoreConfig.defaultPackMax), a version 2 store; 0: never, a version 1 store)."
    )
    var packMax: Int = StoreConfig.defaultPackMax

    @Option(help: "Seal a pack once it holds this many bytes (default 16777216).")
    var packSize: Int64 = StoreConfig.defaultPackSize

    @Flag(name: .long, help: "Print machine-readable JSON on standard output.")
    var json = false

    func validate() throws {
        guard inlineMax >= 0 && inlineMax <= 1 << 20 else {
            throw ValidationError("--inline-max must be between 0 and 1048576")
        }
        guard chunksMin >= 0 else { throw ValidationError("--chunks-min cannot be negative (got \(chunksMin))") }
        guard packMax >= 0 && packMax <= StoreConfig.maximumPackMax else {
            throw ValidationError("--pack-max must be between 0 and \(StoreConfig.maximumPackMax) (got \(packMax))")
        }
        guard StoreConfig.packSizeRange.contains(packSize) else {
            let range = StoreConfig.packSizeRange
            throw ValidationError(
                "--pack-size must be between \(range.lowerBound) and \(range.upperBound) (got \(packSize))")
        }
    }

    func run() throws {
        let config = StoreConfig(
            compression: compression, durability: durability, inlineMax: inlineMax, chunksMin: chunksMin,
            packMax: packMax, packSize: packSize)
        let store = try BlobStore.create(at: directory, config: config)
        if json {
            Output.json([
                "store": store.root, "version": config.version, "compression": config.compression.rawValue,
                "durability": config.durability.rawValue, "inline_max": config.inlineMax,
                "chunks_min": Int(config.chunksMin), "pack_max": config.packMax, "pack_size": Int(config.packSize),
            ])
        } else {
            print(
                "created store \(store.root) (compression \(compression.rawValue), durability \(durability.rawValue))")
        }
    }
}
