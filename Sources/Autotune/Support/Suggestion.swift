/// The likeliest meant name for a misspelt one, for "did you mean" hints in task files and on the command line.
public enum Suggestion {
    /// The name among `candidates` closest to `name`, if it is close enough to be what was meant: the same
    /// words in another order (`ttft_p99_ms` for `ttft_ms_p99`), else the one within a third of its length in
    /// edits (at least two).
    public static func closest(to name: String, among candidates: [String]) -> String? {
        guard name.count <= 64 else { return nil }
        // The same words in another order are the likeliest slip of all.
        let words = name.lowercased().split(separator: "_").sorted()
        if words.count > 1,
            let reordered = candidates.first(where: { $0.lowercased().split(separator: "_").sorted() == words })
        {
            return reordered
        }
        let scored = candidates.map { ($0, distance(name.lowercased(), $0.lowercased())) }.min { $0.1 < $1.1 }
        guard let (best, score) = scored, score <= max(2, best.count / 3) else { return nil }
        return best
    }

    /// ` (did you mean 'NAME'?)` for the closest candidate, or nothing.
    public static func hint(for name: String, among candidates: [String]) -> String {
        closest(to: name, among: candidates).map { " (did you mean '\($0)'?)" } ?? ""
    }

    /// The Levenshtein distance between two strings.
    private static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var previous = row[0]
            row[0] = i
            for j in 1...b.count {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }
}
