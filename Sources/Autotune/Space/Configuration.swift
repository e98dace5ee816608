/// One assignment of a value to every parameter of a ``SearchSpace``.
///
/// Hashable, so strategies and the loop can tell whether a point was already tried; Codable as a flat JSON
/// object of parameter name to value.
public struct Configuration: Sendable, Hashable {
    /// The values by parameter name.
    public var values: [String: ParameterValue]

    /// Creates a configuration from values by name.
    public init(_ values: [String: ParameterValue]) {
        self.values = values
    }

    /// The value of the parameter called `name`.
    public subscript(name: String) -> ParameterValue? {
        values[name]
    }
}

extension Configuration: Codable {
    /// Decodes a flat JSON object.
    public init(from decoder: any Decoder) throws {
        values = try [String: ParameterValue](from: decoder)
    }

    /// Encodes a flat JSON object.
    public func encode(to encoder: any Encoder) throws {
        try values.encode(to: encoder)
    }
}

extension Configuration {
    /// The configuration as `name=value` pairs in the space's order, e.g. `level=3 threads=2 long=true`.
    public func summary(in space: SearchSpace) -> String {
        space.parameters.compactMap { parameter in
            values[parameter.name].map { "\(parameter.name)=\($0.text)" }
        }.joined(separator: " ")
    }
}
