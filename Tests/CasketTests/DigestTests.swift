import Casket
import CasketTestSupport
import Testing

@Suite("Digest")
struct DigestTests {
    /// Known answers: `xxhsum -H2` (xxHash 0.8.1) of `TestBytes.pattern(size)`, computed once with
    /// `python3 -c 'import sys; n=int(sys.argv[1]); sys.stdout.buffer.write(bytes(((i*7)+(i>>8)*13+1)&0xFF
    /// for i in range(n)))' N > pN; xxhsum -H2 pN` and pasted here. Sizes cover every XXH3 code path:
    /// 0, 1-3, 4-8/9-16, 17-128, 129-240, >240 (stripes), and many blocks.
    static let knownAnswers: [(size: Int, hex: String)] = [
        (0, "99aa06d3014798d86001c324468d497f"),
        (1, "51025a4491835505e12ef9d2eb86ceeb"),
        (3, "f727126d6288a4bd5c83885a0fb5d516"),
        (16, "6c53b945f90d679849bf196d35649b79"),
        (17, "f889d91b7faf208294ad051aea796d7e"),
        (128, "776e5a2cae08df3bd480e3bdeadbf37f"),
        (129, "b550da2f042256556a4dda91524c13ef"),
        (240, "3f558c88fda1da664f23bfd3609734e8"),
        (241, "9ea4272027cb71fcbff7215089202d8f"),
        (1 << 20, "eeb09521095c855723230f50faf3fcd9"),
    ]

    @Test("one-shot hash matches xxhsum -H2", arguments: knownAnswers)
    func knownAnswer(size: Int, hex: String) {
        let digest = Digest(hashing: TestBytes.pattern(size))
        #expect(digest.hex == hex)
        #expect(Digest(hex) == digest)
        #expect(digest.description == hex)
    }

    @Test("streaming in uneven pieces equals one-shot", arguments: knownAnswers)
    func streamingMatches(size: Int, hex: String) {
        let bytes = TestBytes.pattern(size)
        // Piece sizes chosen to straddle XXH3's 64-byte stripes and 1 KiB blocks.
        for pieces in [[1], [7], [63, 1, 65], [240, 17, 3], [4095, 1, 4097], [1 << 16, 333]] {
            var hasher = StreamingHasher()
            var offset = 0
            var k = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + pieces[k % pieces.count])
                bytes[offset..<end].withUnsafeBytes { hasher.update($0) }
                offset = end
                k += 1
            }
            #expect(hasher.finalize().hex == hex, "pieces \(pieces)")
        }
    }

    @Test("the empty payload's hash is the documented constant")
    func emptyConstant() {
        #expect(Digest.empty.hex == "99aa06d3014798d86001c324468d497f")
        #expect(StreamingHasher().finalize() == Digest.empty)
    }

    @Test(
        "malformed hex is rejected before it can reach a path",
        arguments: [
            "", "99aa06d3014798d86001c324468d497", "99aa06d3014798d86001c324468d497f0",
            "99AA06D3014798D86001C324468D497F", "99aa06d3014798d86001c324468d497F",
            "99aa06d3014798d86001c324468d497g", "../../etc/passwd", "../../../../../../../../../etc/passwd",
            "99aa06d3014798d8/001c324468d497f", " 99aa06d3014798d86001c324468d497", "0x99aa06d3014798d86001c324468d49",
            "99aa06d3014798d86001c324468d497\u{e9}",
        ])
    func rejectsMalformed(text: String) {
        #expect(Digest(text) == nil)
        #expect(throws: CasketError.self) { try Digest(validating: text) }
        do {
            _ = try Digest(validating: text)
        } catch {
            #expect(error.code == .invalidHash)
            #expect(error.message.contains("32 lowercase hexadecimal digits"))
        }
    }

    @Test("parsing and printing round-trip")
    func roundTrip() throws {
        for seed in 1...50 as ClosedRange<UInt64> {
            let digest = Digest(hashing: TestBytes.random(Int(seed) * 37, seed: seed))
            #expect(try Digest(validating: digest.hex) == digest)
            #expect(Digest(high: digest.high, low: digest.low) == digest)
        }
    }
}
