import ArgumentParser
import Foundation
import Casket

/// The `casket` command: a content-addressed, deduplicating blob store.
struct CasketCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "casket",
        abstract: "A content-addressed, deduplicating blob store for ML pipeline caches.",
        discussion: """
            Every payload is stored once, under its XXH3-128 hash, in a store folder that may live on a \
            shared file system. Commands find the store through --store, then $CASKET_STORE, then the \
            current folder.

            Exit codes: 0 success, 1 failure (the message names the file, blob or key), 2 usage error (also \
            an invalid value, and an argument that is not valid UTF-8), 3 busy (a lock is held); gc and fsck \
            add 4 and 5 (see 'casket help gc' and 'casket help fsck'). With --json, results are printed as JSON \
            on standard output, and so are errors: {"error":{"code":...,"message":...,"path":...}}, with code \
            "usage" for usage errors.
            """,
        version: "0.1.0",
        subcommands: [
            InitCommand.self, SetCommand.self, GetCommand.self, ShowCommand.self, ListCommand.self,
            RemoveCommand.self, CompactCommand.self, StatCommand.self, MigrateCommand.self, GCCommand.self,
            FsckCommand.self, ClaimsCommand.self, BlobCommand.self,
        ]
    )
}

@main
enum CasketMain {
    static func main() {
        let json = CommandLine.arguments.contains("--json")
        if let message = Failure.invalidArgument() { exit(Failure.reportUsage(message, json: json)) }
        do {
            var command = try CasketCommand.parseAsRoot()
            try command.run()
        } catch let error as CasketError {
            exit(Failure.report(error, json: json))
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            let code = CasketCommand.exitCode(for: error)
            let message = CasketCommand.fullMessage(for: error)
            if code == .success {
                print(message)
                exit(0)
            }
            exit(Failure.reportUsage(message, json: json, short: CasketCommand.message(for: error)))
        }
    }
}
