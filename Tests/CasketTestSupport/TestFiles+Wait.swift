import Foundation

extension TestFiles {
    /// Waits until the complete lines of a child's output file satisfy `done`, up to `seconds`; returns
    /// whether they did. Crash tests kill a writer once it has reported enough, not after a fixed sleep, so
    /// a slow machine changes how long they take, not what they check.
    @discardableResult
    public static func waitForLines(
        in path: String, seconds: Double = 60, until done: ([Substring]) -> Bool
    ) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            let complete = text.split(separator: "\n", omittingEmptySubsequences: true).dropLast(
                text.hasSuffix("\n") ? 0 : 1)
            if done(Array(complete)) { return true }
            usleep(20_000)
        }
        return false
    }
}
