import Foundation

/// Arguments written as a POSIX shell reads them back: what `best` prints, what a Slurm or Ray job runs.
public enum ShellWords {
    private static let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")

    /// `argument` as one shell word: bare when it holds only safe characters, else in single quotes (a quote
    /// inside written `'\''`), so no value, name or path can break out into shell syntax.
    public static func quote(_ argument: String) -> String {
        if !argument.isEmpty, argument.allSatisfy({ safe.contains($0) }) { return argument }
        return "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// `arguments` as one command line, each quoted as needed.
    public static func join(_ arguments: [String]) -> String {
        arguments.map(quote).joined(separator: " ")
    }
}
