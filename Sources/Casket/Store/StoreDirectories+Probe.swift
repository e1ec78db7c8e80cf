import Synchronization

extension StoreDirectories {
    /// How long a fan-out folder found empty is taken to be empty by a small put's dedup check.
    static let emptyFanoutInterval: Duration = .milliseconds(500)

    /// Whether the fan-out folder of `digest` held no entry when last looked at, at most
    /// ``emptyFanoutInterval`` ago (looked at again, one listing, once that is over).
    ///
    /// For the dedup check of a payload about to be packed, which may look less hard than a read
    /// (docs/FORMAT.md 3.8): a blob published meanwhile is missed, which costs a copy of the payload in a
    /// pack, never a wrong answer. In a store that packs, most fan-out folders stay empty, and this spares a
    /// small put the two `lstat`s of its blob's forms.
    func fanoutLooksEmpty(_ digest: Digest) -> Bool {
        let slot = Int(digest.high >> 56)
        let now = ContinuousClock.now
        if let seen = emptyFanouts.withLock({ $0[slot] }), now - seen < StoreDirectories.emptyFanoutInterval {
            return true
        }
        guard let fanout = try? fanout(digest) else { return true }
        var empty = true
        do {
            try fanout.forEachEntry { (_, _) throws(CasketError) in
                empty = false
                throw CasketError(.io, "stop")  // one entry is enough
            }
        } catch {
            guard !empty else { return false }  // the listing failed: look for the forms one by one
        }
        emptyFanouts.withLock { $0[slot] = empty ? now : nil }
        return empty
    }
}
