import Casket
import CasketTestSupport
import Foundation
import Testing

/// Group commit's age rule without another write (docs/FORMAT.md 5.5): a session that writes once and
/// idles has its batch committed by its timer, so another process sees the key.
@Suite("group commit: the batch timer of a Swift write session")
struct BatchTimerTests {
    @Test("a session that writes one value and idles commits it after the batch age, with no flush or close")
    func idleSessionCommits() throws {
        try withTemporaryDirectory { dir in
            let store = try TestStore.create(in: dir, durability: .group, packMax: 65536)
            let session = try CacheStore.open(at: store.root).writeSession()
            let value = TestBytes.random(3000, seed: 5)
            try session.set("idle", bytes: value)
            // Another process reads the store: the key appears once the timer committed the batch.
            let deadline = Date().addingTimeInterval(20)
            var got: ProcessOutput? = nil
            while Date() < deadline {
                let out = try CLI.run(["get", "--store", store.root, "idle"], stdoutFile: dir + "/out")
                if out.status == 0 {
                    got = out
                    break
                }
                usleep(50_000)
            }
            #expect(got != nil, "the batch was never committed without a write, flush or close")
            #expect(try TestFiles.read(dir + "/out") == value)
            try session.set("later", bytes: TestBytes.random(100, seed: 6))
            try session.close()
            #expect(try CacheStore.open(at: store.root).get("later") == TestBytes.random(100, seed: 6))
        }
    }
}
