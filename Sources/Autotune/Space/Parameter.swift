import Foundation

/// A named dimension of a ``SearchSpace`` with its domain and how it is passed to an experiment.
public struct Parameter: Sendable, Hashable, Codable {
    /// The name used in placeholders (`{name}`), metrics tables and the store.
    public var name: String
    /// The values the parameter can take.
    public var domain: Domain
    /// The command-line flag used when the parameter is appended as a flag; `nil` means `--name` with
    /// underscores turned into dashes.
    public var flag: String?
    /// When the parameter applies (`when: "speculative == true"`), over parameters declared before it; where
    /// it is false the parameter is inactive: absent from the configuration and the command line.
    public var condition: ParameterExpression?

    /// Creates a parameter.
    public init(_ name: String, _ domain: Domain, flag: String? = nil, when condition: ParameterExpression? = nil) {
        self.name = name
        self.domain = domain
        self.flag = flag
        self.condition = condition
    }

    /// The flag this parameter renders as.
    public var flagName: String {
        flag ?? "--" + name.replacingOccurrences(of: "_", with: "-")
    }
}

extension Parameter {
    /// The set of values a parameter can take.
    public enum Domain: Sendable, Hashable, Codable {
        /// Whole numbers from `lower` to `upper` inclusive, every `step`; `log` spaces them geometrically in the
        /// unit interval (then `step` must be 1 and `lower` at least 1).
        case int(lower: Int, upper: Int, step: Int = 1, log: Bool = false)
        /// Real numbers from `lower` to `upper`; `log` maps them through the logarithm (then `lower` > 0).
        case float(lower: Double, upper: Double, log: Bool = false)
        /// One of a list of choices, strings or numbers.
        case categorical([ParameterValue])
        /// `false` or `true`.
        case bool
        /// Always this value: passed to the experiment, never searched.
        case fixed(ParameterValue)
    }
}

extension Parameter.Domain {
    /// Whether the domain takes part in the search (everything but ``fixed(_:)``).
    public var isSearched: Bool {
        if case .fixed = self { return false }
        return true
    }

    /// The number of distinct values, or `nil` for a continuous range.
    public var count: Int? {
        switch self {
        case .int(let lower, let upper, let step, _): IntGrid(lower: lower, upper: upper, step: step).count
        case .float: nil
        case .categorical(let values): values.count
        case .bool: 2
        case .fixed: 1
        }
    }

    /// How many grid values the domain has: its distinct values, or `resolution` points for a continuous
    /// range. Computed, never enumerated (an int range may hold 2^64 values); saturates at `Int.max`.
    public func gridCount(resolution: Int) -> Int {
        switch self {
        case .float: max(1, resolution)
        default: count ?? 1
        }
    }

    /// The grid value at `index` (`0..<gridCount(resolution:)`): the distinct values in order, `resolution`
    /// evenly spaced points (in the parameter's scale) for a continuous range.
    public func gridValue(at index: Int, resolution: Int) -> ParameterValue {
        switch self {
        case .int(let lower, let upper, let step, _):
            return .int(IntGrid(lower: lower, upper: upper, step: step).value(at: UInt(index)))
        case .float:
            if resolution <= 1 { return value(atUnit: 0.5) }
            return value(atUnit: Double(index) / Double(resolution - 1))
        case .categorical(let values):
            return values[index]
        case .bool:
            return .bool(index == 1)
        case .fixed(let value):
            return value
        }
    }

    /// Maps a point of the unit interval to a value.
    ///
    /// Discrete domains split the interval into equal buckets, one per value, so a uniform draw picks
    /// each value equally often; a log-scaled integer range is widened by half a step at each end for the
    /// same reason.
    public func value(atUnit unit: Double) -> ParameterValue {
        let u = min(max(unit.isNaN ? 0.5 : unit, 0), 1)
        switch self {
        case .int(let lower, let upper, let step, let logScale):
            if logScale {
                let lo = log(Double(lower) - 0.5)
                let hi = log(Double(upper) + 0.5)
                let raw = exp(lo + u * (hi - lo)).rounded()
                return .int(min(max(Int(raw), lower), upper))
            }
            let grid = IntGrid(lower: lower, upper: upper, step: step)
            return .int(grid.value(at: grid.index(atUnit: u)))
        case .float(let lower, let upper, let logScale):
            if logScale {
                let lo = log(lower)
                let hi = log(upper)
                return .double(min(max(exp(lo + u * (hi - lo)), lower), upper))
            }
            return .double(lower + u * (upper - lower))
        case .categorical(let values):
            return values[min(Int(u * Double(values.count)), values.count - 1)]
        case .bool:
            return .bool(u >= 0.5)
        case .fixed(let value):
            return value
        }
    }

    /// Maps a value to the unit interval: the centre of its bucket for discrete domains.
    ///
    /// Returns `nil` when the value is not in the domain.
    public func unit(of value: ParameterValue) -> Double? {
        guard contains(value) else { return nil }
        switch self {
        case .int(let lower, let upper, let step, let logScale):
            if logScale {
                let v = value.numericValue!
                let lo = log(Double(lower) - 0.5)
                let hi = log(Double(upper) + 0.5)
                return (log(v) - lo) / (hi - lo)
            }
            let grid = IntGrid(lower: lower, upper: upper, step: step)
            guard let n = value.exactInt, let index = grid.index(of: n) else { return nil }
            return grid.unit(of: index)
        case .float(let lower, let upper, let logScale):
            let v = value.numericValue!
            if upper == lower { return 0.5 }
            if logScale { return (log(v) - log(lower)) / (log(upper) - log(lower)) }
            return (v - lower) / (upper - lower)
        case .categorical(let values):
            let index = values.firstIndex(of: value)!
            return (Double(index) + 0.5) / Double(values.count)
        case .bool:
            return value == .bool(true) ? 0.75 : 0.25
        case .fixed:
            return 0.5
        }
    }

    /// Whether `value` is one of the domain's values.
    public func contains(_ value: ParameterValue) -> Bool {
        switch self {
        case .int(let lower, let upper, let step, _):
            guard let n = value.exactInt else { return false }
            return IntGrid(lower: lower, upper: upper, step: step).index(of: n) != nil
        case .float(let lower, let upper, _):
            guard let number = value.numericValue, number.isFinite else { return false }
            return number >= lower && number <= upper
        case .categorical(let values):
            return values.contains(value)
        case .bool:
            if case .bool = value { return true }
            return false
        case .fixed(let fixed):
            return fixed == value
        }
    }

    /// The value in this domain's own kind (an integer parameter read back as `3.0` becomes `.int(3)`), or
    /// `nil` when it is not in the domain.
    public func coerce(_ value: ParameterValue) -> ParameterValue? {
        guard contains(value) else { return nil }
        switch self {
        case .int: return .int(value.exactInt!)
        case .float: return .double(value.numericValue!)
        case .categorical(let values): return values.first { $0 == value }
        case .bool, .fixed: return value
        }
    }
}

extension ParameterValue {
    /// The value as an integer when it is one exactly (`3`, `3.0`), else `nil`.
    public var exactInt: Int? {
        if case .int(let n) = self { return n }
        guard let number = numericValue, number == number.rounded() else { return nil }
        return Int(exactly: number)
    }
}

/// An int range's values `lower, lower + step, …, ≤ upper`, with arithmetic that cannot overflow whatever the
/// bounds (`-2^63...2^63-1` included): offsets are unsigned, which holds every difference exactly.
struct IntGrid {
    let lower: Int
    let upper: Int
    let step: Int

    /// The number of steps from the first value to the last (the count less one), exactly.
    var span: UInt { UInt(bitPattern: upper &- lower) / UInt(step) }

    /// The number of values, saturating at `Int.max` (the widest range holds 2^64).
    var count: Int { span >= UInt(Int.max) ? Int.max : Int(span) + 1 }

    /// The value at `index` (`0...span`).
    func value(at index: UInt) -> Int {
        Int(bitPattern: UInt(bitPattern: lower) &+ index &* UInt(step))
    }

    /// The index of `value`, or `nil` when it is not one of the values.
    func index(of value: Int) -> UInt? {
        guard value >= lower, value <= upper else { return nil }
        let offset = UInt(bitPattern: value &- lower)
        return offset % UInt(step) == 0 ? offset / UInt(step) : nil
    }

    /// The index of the value whose bucket of the unit interval holds `u`.
    func index(atUnit u: Double) -> UInt {
        let span = self.span
        let scaled = u * (Double(span) + 1)
        return scaled >= Double(span) ? span : UInt(max(0, scaled))
    }

    /// The centre of `index`'s bucket of the unit interval.
    func unit(of index: UInt) -> Double { (Double(index) + 0.5) / (Double(span) + 1) }
}
