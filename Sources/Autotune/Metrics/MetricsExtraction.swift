public import Foundation

/// Reads named numbers out of what an experiment printed or wrote.
public enum MetricsExtraction {
    /// The numbers of the last JSON object in `output`: the last line that parses as an object, or the
    /// whole output when it is one (pretty-printed JSON).
    ///
    /// Nested objects are flattened with dots (`{"latency": {"p99": 3}}` gives `latency.p99`), booleans
    /// become 0 or 1, and strings, arrays and nulls are ignored. Returns `nil` when there is no JSON object.
    public static func lastJSONObject(in output: String) -> [String: Double]? {
        for line in output.split(whereSeparator: \.isNewline).reversed() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("{"), trimmed.hasSuffix("}") else { continue }
            if let metrics = jsonObject(Data(trimmed.utf8)) { return metrics }
        }
        let whole = output.trimmingCharacters(in: .whitespacesAndNewlines)
        if whole.hasPrefix("{") { return jsonObject(Data(whole.utf8)) }
        return nil
    }

    /// The first value in the last line of `output` that looks like a JSON object (braces at both ends) that is not
    /// a finite number JSON can hold — `NaN`, `Infinity`, `1e400` — with the key before it, or `nil`. A line
    /// holding one does not parse, and a person needs to hear why rather than "no JSON object".
    public static func nonFiniteValue(in output: String) -> (key: String?, value: String)? {
        guard
            let line = output.split(whereSeparator: \.isNewline).reversed().first(where: {
                let trimmed = $0.trimmingCharacters(in: .whitespaces)
                return trimmed.hasPrefix("{") && trimmed.hasSuffix("}")
            })
        else { return nil }
        let text = String(line)
        let pattern = #"(?:"([^"]*)"\s*:\s*)?(-?(?:NaN|nan|Infinity|infinity|inf)\b|-?\d+(?:\.\d+)?[eE]\+?(\d{3,}))"#
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return nil }
        for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            guard let value = Range(match.range(at: 2), in: text) else { continue }
            if let exponent = Range(match.range(at: 3), in: text), let digits = Int(text[exponent]), digits < 309 {
                continue
            }
            let key = Range(match.range(at: 1), in: text).map { String(text[$0]) }
            return (key, String(text[value]))
        }
        return nil
    }

    /// The numbers of a JSON document that is an object, flattened as in ``lastJSONObject(in:)``.
    public static func jsonObject(_ data: Data) -> [String: Double]? {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: data), case .object = value else {
            return nil
        }
        var metrics: [String: Double] = [:]
        flatten(value, prefix: "", into: &metrics)
        return metrics
    }

    /// The value of each pattern's first capture group in its last match, searching `texts` in order;
    /// a pattern that matches nowhere is left out.
    public static func patterns(_ patterns: [String: String], in texts: [String]) throws -> [String: Double] {
        var metrics: [String: Double] = [:]
        for (name, pattern) in patterns {
            let regex = try NSRegularExpression(pattern: pattern)
            for text in texts {
                let range = NSRange(text.startIndex..., in: text)
                guard let match = regex.matches(in: text, range: range).last, match.numberOfRanges > 1,
                    let captured = Range(match.range(at: 1), in: text),
                    let value = Double(text[captured].trimmingCharacters(in: .whitespaces))
                else { continue }
                metrics[name] = value
                break
            }
        }
        return metrics
    }

    /// Why `pattern` cannot extract a metric (it does not compile, or has no capture group), or `nil`.
    public static func problem(withPattern pattern: String) -> String? {
        do {
            let regex = try NSRegularExpression(pattern: pattern)
            return regex.numberOfCaptureGroups == 0 ? "the pattern has no capture group: wrap the number in ( )" : nil
        } catch {
            return "the pattern is not a valid regular expression"
        }
    }

    private static func flatten(_ value: JSONValue, prefix: String, into metrics: inout [String: Double]) {
        switch value {
        case .object(let members):
            for (key, child) in members {
                flatten(child, prefix: prefix.isEmpty ? key : prefix + "." + key, into: &metrics)
            }
        case .number(let number) where !prefix.isEmpty:
            metrics[prefix] = number
        case .bool(let flag) where !prefix.isEmpty:
            metrics[prefix] = flag ? 1 : 0
        default:
            break
        }
    }
}
