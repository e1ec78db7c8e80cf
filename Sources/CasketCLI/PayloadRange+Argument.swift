public import ArgumentParser
public import Casket

/// `--range A:B` of `get` and `blob get`: a value that is not `A:B`, `A:` or `:B` with `A <= B` is a usage
/// error (exit 2) that names it.
extension PayloadRange: ExpressibleByArgument {
    /// Parses the option's value (see ``PayloadRange/init(parsing:)``).
    public init?(argument: String) { self.init(parsing: argument) }

    static let help = ArgumentHelp(
        "Write only payload bytes A (included) to B (excluded), verified by chunk: A:B, A: or :B.",
        valueName: "A:B")
}
