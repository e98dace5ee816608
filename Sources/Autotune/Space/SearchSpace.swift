/// The parameters a study searches, in declaration order.
///
/// Every searched parameter maps to one coordinate of the unit cube, so numeric strategies work in
/// `[0, 1]^d` and ``configuration(atUnit:)`` turns any such point back into a valid ``Configuration``.
public struct SearchSpace: Sendable, Hashable, Codable {
    /// The parameters, fixed ones included, in the order they render as flags.
    public let parameters: [Parameter]
    /// Known constraints between parameters (`tensor_parallel_size * pipeline_parallel_size <= gpus`): no
    /// strategy proposes a configuration that breaks one.
    public let constraints: [ParameterExpression]

    /// The names an expression may read besides the parameters: `gpus`, the number of GPUs trials can lease.
    public static let constantNames: Set<String> = ["gpus"]

    /// Creates a space; parameter names must be unique, a condition may only read parameters declared before
    /// its own, and a constraint only parameters and ``constantNames``.
    public init(_ parameters: [Parameter], constraints: [ParameterExpression] = []) throws(SearchSpaceError) {
        var seen: Set<String> = []
        for parameter in parameters {
            if let condition = parameter.condition {
                if let unknown = condition.names.subtracting(seen).sorted().first {
                    throw SearchSpaceError(
                        "'\(parameter.name)': its condition reads '\(unknown)', which is not a parameter declared before it"
                    )
                }
            }
            guard seen.insert(parameter.name).inserted else {
                throw SearchSpaceError("parameter '\(parameter.name)' is declared twice")
            }
            try Self.validate(parameter)
        }
        for constraint in constraints {
            if let unknown = constraint.names.subtracting(seen).subtracting(Self.constantNames).sorted().first {
                throw SearchSpaceError(
                    "constraint '\(constraint)': '\(unknown)' is not a parameter (or one of: \(Self.constantNames.sorted().joined(separator: ", ")))"
                )
            }
        }
        self.parameters = parameters
        self.constraints = constraints
    }

    private enum CodingKeys: String, CodingKey { case parameters, constraints }

    /// Decodes a space; spaces stored before constraints existed have none.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        parameters = try container.decode([Parameter].self, forKey: .parameters)
        constraints = try container.decodeIfPresent([ParameterExpression].self, forKey: .constraints) ?? []
    }

    /// Whether some parameter applies only under a condition.
    public var isConditional: Bool { parameters.contains { $0.condition != nil } }

    /// `values` without the parameters whose condition is false, deciding in declaration order (a condition
    /// reads only parameters declared before it, themselves already decided).
    public func activeValues(_ values: [String: ParameterValue]) -> [String: ParameterValue] {
        guard isConditional else { return values }
        var active: [String: ParameterValue] = [:]
        for parameter in parameters {
            guard let value = values[parameter.name] else { continue }
            if let condition = parameter.condition, !condition.isTrue(active) { continue }
            active[parameter.name] = value
        }
        return active
    }

    /// Whether `parameter` applies in a configuration with these (active) values.
    public func isActive(_ parameter: Parameter, in values: [String: ParameterValue]) -> Bool {
        parameter.condition.map { $0.isTrue(values) } ?? true
    }

    /// Whether `configuration` keeps every known constraint, with `constants` for names such as `gpus` (a
    /// constraint reading an unknown constant, or an inactive parameter, does not apply).
    public func isFeasible(_ configuration: Configuration, constants: [String: Double] = [:]) -> Bool {
        constraints.allSatisfy { $0.holds(configuration.values, constants: constants) }
    }

    /// The first known constraint `configuration` breaks, if any.
    public func brokenConstraint(_ configuration: Configuration, constants: [String: Double] = [:])
        -> ParameterExpression?
    {
        constraints.first { !$0.holds(configuration.values, constants: constants) }
    }

    /// The parameters that take part in the search (all but the fixed ones); one unit-cube coordinate each.
    public var searched: [Parameter] { parameters.filter { $0.domain.isSearched } }

    /// The number of unit-cube coordinates.
    public var dimension: Int { searched.count }

    /// The number of distinct configurations, or `nil` when a parameter is continuous or the count
    /// overflows.
    public var cardinality: Int? {
        var total = 1
        for parameter in parameters {
            guard let count = parameter.domain.count else { return nil }
            let (product, overflow) = total.multipliedReportingOverflow(by: count)
            if overflow { return nil }
            total = product
        }
        return total
    }

    /// The parameter called `name`.
    public subscript(name: String) -> Parameter? {
        parameters.first { $0.name == name }
    }

    /// The configuration at a point of the unit cube (one coordinate per ``searched`` parameter).
    public func configuration(atUnit point: [Double]) -> Configuration {
        precondition(point.count == dimension, "point has \(point.count) coordinates, space has \(dimension)")
        var values: [String: ParameterValue] = [:]
        var index = 0
        for parameter in parameters {
            if parameter.domain.isSearched {
                values[parameter.name] = parameter.domain.value(atUnit: point[index])
                index += 1
            } else {
                values[parameter.name] = parameter.domain.value(atUnit: 0.5)
            }
        }
        return Configuration(activeValues(values))
    }

    /// The unit-cube point of a configuration: bucket centres for discrete values, the centre for an inactive
    /// parameter.
    public func unitPoint(of configuration: Configuration) throws(SearchSpaceError) -> [Double] {
        try searched.map { parameter throws(SearchSpaceError) in
            guard let value = configuration[parameter.name] else {
                if parameter.condition != nil { return 0.5 }
                throw SearchSpaceError("configuration has no value for '\(parameter.name)'")
            }
            guard let unit = parameter.domain.unit(of: value) else {
                throw SearchSpaceError("value \(value) is not in the domain of '\(parameter.name)'")
            }
            return unit
        }
    }

    /// Checks that `values` assigns every active parameter a value from its domain and nothing else, and
    /// returns the configuration with each value in its parameter's own kind; values given for inactive
    /// parameters are dropped.
    ///
    /// Used on anything that comes from outside: a store row, a plug-in's answer, a user's file.
    public func coerce(_ values: [String: ParameterValue]) throws(SearchSpaceError) -> Configuration {
        var result: [String: ParameterValue] = [:]
        for parameter in parameters {
            if let condition = parameter.condition, !condition.isTrue(result) { continue }
            guard let value = values[parameter.name] else {
                throw SearchSpaceError("no value for parameter '\(parameter.name)'")
            }
            guard let coerced = parameter.domain.coerce(value) else {
                throw SearchSpaceError(
                    "value \(value) is not in the domain of parameter '\(parameter.name)' (\(parameter.domain.summary))"
                )
            }
            result[parameter.name] = coerced
        }
        if let extra = values.keys.sorted().first(where: { self[$0] == nil }) {
            throw SearchSpaceError("'\(extra)' is not a parameter of the search space")
        }
        return Configuration(result)
    }

    /// Whether every value is in its domain and no parameter is missing.
    public func contains(_ configuration: Configuration) -> Bool {
        (try? coerce(configuration.values)) != nil
    }

    /// The configuration at a mixed-radix `index` of the grid (`0..<gridCount`), the last parameter varying
    /// fastest.
    public func gridConfiguration(at index: Int, resolution: Int) -> Configuration {
        var remainder = index
        var values: [String: ParameterValue] = [:]
        for parameter in parameters.reversed() {
            let count = parameter.domain.gridCount(resolution: resolution)
            values[parameter.name] = parameter.domain.gridValue(at: remainder % count, resolution: resolution)
            remainder /= count
        }
        return Configuration(activeValues(values))
    }

    /// The number of grid points when continuous parameters get `resolution` points each, or `nil` on
    /// overflow.
    public func gridCount(resolution: Int) -> Int? {
        var total = 1
        for parameter in parameters {
            let (product, overflow) = total.multipliedReportingOverflow(
                by: parameter.domain.gridCount(resolution: resolution)
            )
            if overflow { return nil }
            total = product
        }
        return total
    }

    private static func validate(_ parameter: Parameter) throws(SearchSpaceError) {
        let name = parameter.name
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." })
        else {
            throw SearchSpaceError("parameter name '\(name)' may only hold letters, digits, '_', '-' and '.'")
        }
        switch parameter.domain {
        case .int(let lower, let upper, let step, let logScale):
            guard lower <= upper else { throw SearchSpaceError("'\(name)': min \(lower) is above max \(upper)") }
            guard step >= 1 else { throw SearchSpaceError("'\(name)': step must be at least 1, got \(step)") }
            if logScale {
                guard lower >= 1 else { throw SearchSpaceError("'\(name)': a log-scaled int needs min >= 1") }
                guard step == 1 else { throw SearchSpaceError("'\(name)': a log-scaled int cannot have a step") }
            }
        case .float(let lower, let upper, let logScale):
            guard lower.isFinite, upper.isFinite else { throw SearchSpaceError("'\(name)': bounds must be finite") }
            guard lower <= upper else { throw SearchSpaceError("'\(name)': min \(lower) is above max \(upper)") }
            if logScale, lower <= 0 { throw SearchSpaceError("'\(name)': a log-scaled float needs min > 0") }
        case .categorical(let values):
            guard !values.isEmpty else { throw SearchSpaceError("'\(name)': a categorical needs at least one value") }
            guard Set(values).count == values.count else {
                throw SearchSpaceError("'\(name)': categorical values must be distinct")
            }
        case .bool, .fixed:
            break
        }
    }
}

/// A search space or configuration that does not make sense, with the reason.
public struct SearchSpaceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, naming the parameter.
    public var message: String

    /// Creates an error with a message.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

extension Parameter.Domain {
    /// A short human description, e.g. `int 1...19` or `one of [fast, dfast]`.
    public var summary: String {
        switch self {
        case .int(let lower, let upper, let step, let logScale):
            "int \(lower)...\(upper)" + (step == 1 ? "" : " step \(step)") + (logScale ? " log" : "")
        case .float(let lower, let upper, let logScale):
            "float \(ParameterValue.format(lower))...\(ParameterValue.format(upper))" + (logScale ? " log" : "")
        case .categorical(let values): "one of [\(values.map(\.text).joined(separator: ", "))]"
        case .bool: "bool"
        case .fixed(let value): "fixed \(value)"
        }
    }
}
