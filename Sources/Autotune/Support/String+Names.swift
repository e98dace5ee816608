extension String {
    /// Whether the string is a POSIX environment variable name: ASCII letters, digits and `_`, not starting with
    /// a digit. Only such names can be read by every program and exported by a shell unquoted.
    public var isEnvironmentVariableName: Bool {
        guard let first = unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return unicodeScalars.allSatisfy {
            $0 == "_" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
        }
    }
}
