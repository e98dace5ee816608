import Foundation

/// How numbers look to a person: about four significant digits, no exponent in the usual ranges.
///
/// `28413.7` is `28414`, `0.9147104947` is `0.9147`, `7108.798959650001` is `7109`, `3.7e-05` stays an
/// exponent (below 0.0001 and from a billion up, where digits would only be zeros). Exports (CSV, JSON) keep
/// full precision; this is for tables, progress lines and messages.
public enum HumanNumber {
    /// `value` with about `digits` significant digits.
    public static func format(_ value: Double, digits: Int = 4) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : value > 0 ? "inf" : "-inf" }
        if value == 0 { return "0" }
        let magnitude = abs(value)
        guard magnitude >= 1e-4, magnitude < 1e9 else { return String(format: "%.\(max(digits - 1, 0))e", value) }
        let exponent = Int(log10(magnitude).rounded(.down))
        let decimals = max(0, digits - 1 - exponent)
        return trimmed(String(format: "%.\(decimals)f", value))
    }

    /// A float parameter's value at the precision its range calls for: four digits across the range (`0.9147`
    /// in 0.85–0.97, `3.14` in −5–10), four significant digits for a log-scaled one.
    public static func format(_ value: Double, range: ClosedRange<Double>, log: Bool) -> String {
        let width = range.upperBound - range.lowerBound
        guard !log, width > 0, width.isFinite else { return format(value) }
        let decimals = max(0, Int((-Foundation.log10(width / 1000)).rounded(.up)))
        return trimmed(String(format: "%.\(min(decimals, 12))f", value))
    }

    /// Drops trailing zeros after a decimal point, and the point itself when nothing follows.
    private static func trimmed(_ text: String) -> String {
        guard text.contains(".") else { return text }
        var text = text
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text == "-0" ? "0" : text
    }
}

extension Parameter {
    /// `value` as a person reads it: floats at the precision of the parameter's range, everything else as it is
    /// passed to the program.
    public func display(_ value: ParameterValue) -> String {
        if case .float(let lower, let upper, let log) = domain, case .double(let number) = value {
            return HumanNumber.format(number, range: lower...upper, log: log)
        }
        return value.text
    }
}

extension Configuration {
    /// The configuration for a person: `name=value` in the space's order, floats at their range's precision.
    public func display(in space: SearchSpace) -> String {
        space.parameters.compactMap { parameter in
            values[parameter.name].map { "\(parameter.name)=\(parameter.display($0))" }
        }.joined(separator: " ")
    }
}
