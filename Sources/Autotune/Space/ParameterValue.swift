/// One value a parameter can take: an integer, a real number, a string or a boolean.
///
/// Integers and integral reals compare and hash as the same number, so `3` read back from JSON matches the
/// `3.0` a float parameter proposed; ``SearchSpace/coerce(_:)`` restores the declared kind.
public enum ParameterValue: Sendable {
    /// A whole number.
    case int(Int)
    /// A real number.
    case double(Double)
    /// A string, for categorical choices.
    case string(String)
    /// A boolean, rendered as a bare flag when true.
    case bool(Bool)

    /// The value as a real number, when it is numeric.
    public var numericValue: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        case .string, .bool: nil
        }
    }

    /// The text used for flags, placeholders and environment variables.
    public var text: String {
        switch self {
        case .int(let value): String(value)
        case .double(let value): Self.format(value)
        case .string(let value): value
        case .bool(let value): value ? "true" : "false"
        }
    }

    /// Formats a real number without a trailing `.0` when it is integral, and with the shortest exact digits
    /// otherwise, so `0.9` renders as `0.9` and `64.0` as `64`.
    static func format(_ value: Double) -> String {
        if value.isFinite, value == value.rounded(), abs(value) < 1e15 {
            return String(Int(value))
        }
        return "\(value)"
    }
}

extension ParameterValue: Hashable {
    /// Numbers compare by value across `int` and `double`.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.string(let a), .string(let b)): a == b
        case (.bool(let a), .bool(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.int, .double), (.double, .int), (.double, .double):
            lhs.numericValue == rhs.numericValue
        default: false
        }
    }

    /// Hashes integral reals as integers, so equal numbers hash alike.
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .string(let value):
            hasher.combine(0)
            hasher.combine(value)
        case .bool(let value):
            hasher.combine(1)
            hasher.combine(value)
        case .int(let value):
            hasher.combine(2)
            hasher.combine(value)
        case .double(let value):
            if value == value.rounded(), let exact = Int(exactly: value) {
                hasher.combine(2)
                hasher.combine(exact)
            } else {
                hasher.combine(3)
                hasher.combine(value)
            }
        }
    }
}

extension ParameterValue: Codable {
    /// Decodes a JSON scalar: booleans first, then integers, then reals, then strings.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    /// Encodes as the plain JSON scalar.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        }
    }
}

extension ParameterValue: CustomStringConvertible {
    /// The same text as ``text``; strings are not quoted.
    public var description: String { text }
}
