import Casket
import CasketTestSupport
import Foundation
import Testing

/// The command line's usage errors, keys in messages, `ls` streaming and inlining (issue 10, findings 9,
/// 19 and 20, and the `payloadBytes` / `inline_max` drift).
@Suite("casket CLI: usage errors, keys, ls, inline")
struct CLIUsageTests {
    /// A fresh store made by `casket init` with `extra` options.
    static func store(_ dir: TemporaryDirectory, _ extra: [String] = []) throws -> String {
        let store = dir.child("store")
        let created = try CLI.run(["init", "--durability", "none"] + extra + [store])
        #expect(created.status == 0, "\(created)")
        return store
    }

    /// Runs casket with `arguments` followed by one argument whose raw bytes are `printf`'s `format`.
    static func runWithRawArgument(_ arguments: [String], printf format: String, then tail: [String] = [])
        throws -> ProcessOutput
    {
        try runProgram(
            "/bin/sh",
            [
                "-c",
                "bin=$1; fmt=$2; shift 2; exec \"$bin\" \"$@\" \"$(printf \"$fmt\")\" \(tail.joined(separator: " "))",
            ]
                + ["sh", try CLI.executable(), format] + arguments)
    }

    @Test("keys that are not valid UTF-8 (k\\xff, k\\xfe) are refused with exit 2 naming them; none overwrites another")
    func invalidUTF8Keys() throws {
        let dir = try TemporaryDirectory()
        let store = try Self.store(dir)
        try TestFiles.write(dir.child("one"), [1])
        try TestFiles.write(dir.child("two"), [2])
        let first = try Self.runWithRawArgument(["set", "--store", store], printf: "k\\377", then: [dir.child("one")])
        let second = try Self.runWithRawArgument(["set", "--store", store], printf: "k\\376", then: [dir.child("two")])
        for (output, shown) in [(first, "'k\\xff'"), (second, "'k\\xfe'")] {
            #expect(output.status == 2, "\(output)")
            #expect(output.stderr.contains("not valid UTF-8") && output.stderr.contains(shown), "\(output)")
        }
        let ls = try CLI.run(["ls", "--store", store])
        #expect(ls.status == 0 && ls.stdout.isEmpty, "nothing was written: \(ls)")
        let json = try Self.runWithRawArgument(["rm", "--json", "--store", store], printf: "a\\300\\257")
        #expect(json.status == 2 && json.stdout.contains("\"code\":\"usage\""), "an overlong '/' too: \(json)")
        #expect(json.stdout.contains("a\\\\xc0\\\\xaf"), "\(json)")
    }

    /// One usage error and what it must say.
    struct Usage: Sendable, CustomTestStringConvertible {
        var arguments: [String]
        var message: String
        var testDescription: String { arguments.joined(separator: " ") }
    }

    static let usages: [Usage] = [
        Usage(arguments: ["gc", "--grace", "-5s"], message: "--grace cannot be negative"),
        Usage(arguments: ["gc", "--grace=-5s"], message: "--grace cannot be negative"),
        Usage(arguments: ["gc", "--lock-ttl", "0"], message: "--lock-ttl must be greater than 0"),
        Usage(arguments: ["gc", "--lock-ttl", "-1m"], message: "--lock-ttl cannot be negative"),
        Usage(arguments: ["gc", "--max-clock-skew", "0s"], message: "--max-clock-skew must be greater than 0"),
        Usage(arguments: ["gc", "--heartbeat", "0"], message: "--heartbeat must be greater than 0"),
        Usage(arguments: ["gc", "--keep-reports", "-3"], message: "--keep-reports cannot be negative"),
        Usage(arguments: ["gc", "--grace", "soon"], message: "is not a duration"),
        Usage(arguments: ["claims", "--ttl", "0"], message: "--ttl must be a positive number of seconds"),
        Usage(arguments: ["claims", "--ttl", "-5"], message: "--ttl must be a positive number of seconds"),
        Usage(arguments: ["compact", "--idle", "-1"], message: "--idle cannot be negative"),
        Usage(arguments: ["fsck", "--sample", "-2"], message: "--sample must not be negative"),
        Usage(arguments: ["stat", "--no-such-option"], message: "--no-such-option"),
        Usage(arguments: ["set", ""], message: "a key must not be empty"),
    ]

    @Test(
        "usage errors exit 2 everywhere, and with --json print {\"error\":{\"code\":...}} on stdout", arguments: usages)
    func usage(_ usage: Usage) throws {
        let dir = try TemporaryDirectory()
        let store = try Self.store(dir)
        let arguments = usage.arguments + ["--store", store]
        let plain = try CLI.run(arguments)
        #expect(plain.status == 2, "\(plain)")
        #expect(plain.stderr.contains(usage.message), "\(plain)")
        let json = try CLI.run(arguments + ["--json"])
        #expect(json.status == 2, "\(json)")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let error = try #require(object?["error"] as? [String: Any], "\(json)")
        #expect(["usage", "invalid_argument"].contains(error["code"] as? String), "\(json)")
        #expect((error["message"] as? String)?.contains(usage.message) == true, "\(json)")
    }

    @Test("a failure under --json prints its code, message and path; the key in a message is escaped and shortened")
    func keysInMessages() throws {
        let dir = try TemporaryDirectory()
        let store = try Self.store(dir)
        let long = String(repeating: "x", count: 100_000)
        for command in ["show", "get", "rm"] {
            let output = try CLI.run([command, "--store", store, long])
            #expect(output.status == 1, "\(output)")
            #expect(output.stderr.contains("'" + String(repeating: "x", count: 80) + "… (100000 bytes)'"), "\(output)")
            #expect(output.stderr.utf8.count < 1000, "\(command): the key is not printed whole")
        }
        let escaped = try CLI.run(["show", "--json", "--store", store, "line\nbreak\u{1B}[31m"])
        #expect(escaped.status == 1 && escaped.stderr.contains("'line\\nbreak\\x1b[31m'"), "\(escaped)")
        #expect(!escaped.stderr.contains("\n") || escaped.stderr.split(separator: "\n").count == 1, "\(escaped)")
        let object = try JSONSerialization.jsonObject(with: Data(escaped.stdout.utf8)) as? [String: Any]
        let error = try #require(object?["error"] as? [String: Any], "\(escaped)")
        #expect(error["code"] as? String == "not_found")
    }

    @Test("ls --json is valid JSON for keys with quotes, backslashes, newlines, control and non-ASCII characters")
    func listJSON() throws {
        let dir = try TemporaryDirectory()
        let store = try Self.store(dir)
        let keys = ["plain", "quo\"te", "back\\slash", "new\nline", "tab\tand\u{1}ctl", "café", "日本語/キー", "emoji 🎉"]
        try TestFiles.write(dir.child("payload"), TestBytes.random(300, seed: 3))
        for key in keys { #expect(try CLI.run(["set", "--store", store, key, dir.child("payload")]).status == 0) }
        let output = try CLI.run(["ls", "--json", "--store", store])
        #expect(output.status == 0, "\(output)")
        let array = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]])
        #expect(Set(array.compactMap { $0["key"] as? String }) == Set(keys))
        #expect(array.allSatisfy { ($0["size"] as? Int) == 300 && ($0["blobs"] as? Int) == 1 })
        let other = try TemporaryDirectory()
        let empty = try CLI.run(["ls", "--json", "--store", try Self.store(other)])
        #expect(empty.stdout == "[]\n", "\(empty)")
    }

    @Test("set inlines a payload of at most inline_max bytes (file and stdin); ls counts inline bytes")
    func inline() throws {
        let dir = try TemporaryDirectory()
        let store = try Self.store(dir, ["--inline-max", "64", "--pack-max", "0"])  // inline or a blob file, no pack
        try TestFiles.write(dir.child("small"), Array("hello".utf8))
        try TestFiles.write(dir.child("edge"), TestBytes.random(64, seed: 1))
        try TestFiles.write(dir.child("big"), TestBytes.random(65, seed: 2))
        #expect(try CLI.run(["set", "--store", store, "small", dir.child("small")]).status == 0)
        #expect(try CLI.run(["set", "--store", store, "edge", dir.child("edge")]).status == 0)
        #expect(try CLI.run(["set", "--store", store, "big", dir.child("big")]).status == 0)
        #expect(try CLI.run(["set", "--store", store, "stdin-small"], stdinFile: dir.child("small")).status == 0)
        #expect(try CLI.run(["set", "--store", store, "stdin-big"], stdinFile: dir.child("big")).status == 0)
        for (key, inline) in [
            ("small", true), ("edge", true), ("big", false), ("stdin-small", true), ("stdin-big", false),
        ] {
            let show = try CLI.run(["show", "--store", store, key])
            #expect(show.stdout.contains("\"inline\":") == inline, "\(key): \(show)")
            let out = dir.child("out-\(key)")
            #expect(try CLI.run(["get", "--store", store, key, "-o", out]).status == 0)
            let source = key.hasSuffix("small") ? "small" : key.hasSuffix("big") ? "big" : key
            #expect(try TestFiles.read(out) == TestFiles.read(dir.child(source)), "\(key)")
        }
        #expect(TestStore.blobFiles(store).count == 1, "only the 65-byte payload is a blob")
        let ls = try CLI.run(["ls", "--store", store])
        #expect(ls.stdout == "65\tbig\n64\tedge\n5\tsmall\n65\tstdin-big\n5\tstdin-small\n", "\(ls)")
    }
}
