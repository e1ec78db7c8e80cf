/// Everything in `claims/`: the claim files, and what does not belong there (reported, never fatal).
public struct ClaimSurvey: Sendable {
    /// A name in `claims/` that is not a claim, a unique file or a takeover file, or that cannot be read.
    public struct Stray: Sendable, CustomStringConvertible {
        /// The entry.
        public var path: String
        /// Why it is not listed as a claim.
        public var reason: String

        /// `claims/x: not a claim file name`.
        public var description: String { "\(path): \(reason)" }
    }

    /// Every claim file (readable or not), sorted by key then path.
    public var claims: [ClaimRecord]
    /// Everything else that is not protocol debris (`*.tmp` unique files, `*.takeover` files).
    public var strays: [Stray]
}
