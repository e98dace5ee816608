extension Duration {
    /// The duration in seconds as a real number.
    public var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) * 1e-18
    }

    /// The longest time limit or interval a study accepts: a year, far past any trial or study, and far
    /// inside what a `Duration` or a sleep can hold.
    public static let longestLimit: Duration = .seconds(366 * 86_400)
}

/// Time limits are stored as seconds (a number), so stored studies read the same whatever the API's type.
extension KeyedDecodingContainer {
    /// A duration stored as seconds.
    public func decodeSeconds(forKey key: Key) throws -> Duration {
        .seconds(try decode(Double.self, forKey: key))
    }

    /// A duration stored as seconds, when present.
    public func decodeSecondsIfPresent(forKey key: Key) throws -> Duration? {
        try decodeIfPresent(Double.self, forKey: key).map { .seconds($0) }
    }
}

extension KeyedEncodingContainer {
    /// Stores a duration as seconds.
    public mutating func encodeSeconds(_ duration: Duration, forKey key: Key) throws {
        try encode(duration.seconds, forKey: key)
    }

    /// Stores a duration as seconds, when there is one.
    public mutating func encodeSecondsIfPresent(_ duration: Duration?, forKey key: Key) throws {
        try encodeIfPresent(duration?.seconds, forKey: key)
    }
}
