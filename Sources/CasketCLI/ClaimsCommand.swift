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
            in the file system's time. An unreadable claim file (empty, truncated) is listed by its age \
            alone; anything else in claims/ is listed as stray and skipped. See docs/CLAIMS.md.
            """
    )

    @OptionGroup var options: StoreOptions

    @Option(
        parsing: .unconditional, help: "Seconds without a heartbeat after which a claim counts as stale (positive).")
    var ttl: Double = 60

    func validate() throws {
        guard ttl > 0, ttl.isFinite else { throw ValidationError("--ttl must be a positive number of seconds") }
    }

    func run() throws {
        let survey = try ClaimBoard(store: try options.openStore(), ttl: .seconds(ttl)).survey()
        if options.json {
            Output.json([
                "claims": survey.claims.map { claim -> [String: Any] in
                    [
                        "key": claim.key.map { $0 as Any } ?? NSNull(),
                        "host": claim.host.map { $0 as Any } ?? NSNull(),
                        "pid": claim.pid.map { Int($0) as Any } ?? NSNull(),
                        "age_seconds": Double(claim.age.wholeNanoseconds) / 1e9,
                        "state": claim.isStale ? "stale" : "live", "readable": claim.lease.record != nil,
                        "created": claim.lease.record.map { $0.created as Any } ?? NSNull(), "file": claim.path,
                    ]
                },
                "strays": survey.strays.map { ["file": $0.path, "reason": $0.reason] },
            ])
            return
        }
        if survey.claims.isEmpty { print("no claims") }
        for claim in survey.claims {
            let age = String(format: "%.1f", Double(claim.age.wholeNanoseconds) / 1e9)
            let holder = claim.lease.record.map { "\($0.host):\($0.pid)" } ?? "unreadable"
            print("\(claim.isStale ? "stale" : "live ")  \(holder)  age \(age) s  \(claim.key ?? claim.path)")
        }
        for stray in survey.strays { print("stray  \(stray.path)  (\(stray.reason))") }
    }
}
