import CasketGC
import Testing

@Suite("Durations")
struct GCDurationTests {
    @Test(
        "parse",
        arguments: [
            ("24h", Int64(86_400_000_000_000)), ("30m", 1_800_000_000_000), ("2s", 2_000_000_000),
            ("500ms", 500_000_000), ("90", 90_000_000_000), ("1.5s", 1_500_000_000), ("7d", 604_800_000_000_000),
            ("0", 0),
        ])
    func parse(text: String, nanoseconds: Int64) {
        #expect(GCDuration.parse(text) == nanoseconds)
    }

    @Test("reject", arguments: ["", "h", "-1s", "1x", "1 h", "ten"])
    func reject(text: String) {
        #expect(GCDuration.parse(text) == nil)
    }
}
