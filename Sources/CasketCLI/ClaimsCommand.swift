import ArgumentParser
import Casket
import Foundation

/// `casket claims`.
struct ClaimsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "claims",
        abstract: "List compute-once claims: which worker is computing which key, and since when.",
        discussion: """
            A claim is live while its holder's heartbeat is younger than the TTL, stale after that (its \
            holder died or stalled; the next worker that wants the key takes it over). Ages are measured \
            in the file system's time. See docs/CLAIMS.md.
            """
    )

    @OptionGroup var options: StoreOptions

    @Option(parsing: .unconditional, help: "Seconds without a heartbeat after which a claim counts as stale.")
    var ttl: Double = 60

    func validate() throws {
        if !(ttl > 0) { throw ValidationError("--ttl must be greater than 0 (got \(ttl))") }
    }

    func run() throws {
        let board = ClaimBoard(store: try options.openStore(), ttlSeconds: ttl)
        let claims = try board.list()
        if options.json {
            Output.json(
                claims.map { claim -> [String: Any] in
                    [
                        "key": claim.record.key, "generation": claim.record.generation, "host": claim.record.host,
                        "pid": claim.record.pid, "age_seconds": Double(claim.age) / 1e9,
                        "state": claim.stale ? "stale" : "live", "started": claim.record.started,
                        "file": claim.path,
                    ]
                })
            return
        }
        if claims.isEmpty { print("no claims") }
        for claim in claims {
            let age = String(format: "%.1f", Double(claim.age) / 1e9)
            print(
                "\(claim.stale ? "stale" : "live ")  \(claim.record.host):\(claim.record.pid)  age \(age) s  "
                    + "gen \(claim.record.generation)  \(claim.record.key)")
        }
    }
}
