import Autotune
import Foundation
import Yams

/// A node of a task file with its path from the root, so every error names the field and the line.
struct TaskNode {
    let node: Node
    let path: String
    let file: String

    var line: Int? { node.mark.map { $0.line } }
    var column: Int? { node.mark.map { $0.column } }

    func error(_ message: String) -> TaskFileError {
        TaskFileError(file: file, line: line, column: column, field: path, message: message)
    }

    func child(_ node: Node, key: String) -> TaskNode {
        TaskNode(node: node, path: path.isEmpty ? key : "\(path).\(key)", file: file)
    }

    func element(_ node: Node, index: Int) -> TaskNode {
        TaskNode(node: node, path: "\(path)[\(index)]", file: file)
    }

    // MARK: Shapes

    /// The mapping's entries in order, rejecting keys not in `allowed` with a did-you-mean hint.
    func mapping(allowed: [String]? = nil) throws(TaskFileError) -> [(key: String, value: TaskNode)] {
        guard case .mapping(let mapping) = node else {
            throw error("expected a mapping (key: value pairs), got \(kind)")
        }
        var entries: [(key: String, value: TaskNode)] = []
        var seen: Set<String> = []
        for (keyNode, valueNode) in mapping {
            let keyField = TaskNode(node: keyNode, path: path, file: file)
            guard case .scalar(let scalar) = keyNode else { throw keyField.error("keys must be plain strings") }
            let key = scalar.string
            let value = child(valueNode, key: key)
            // Problems with a key are reported where the key is written, not where its value starts.
            let named = child(keyNode, key: key)
            guard seen.insert(key).inserted else { throw named.error("'\(Self.quoted(key))' is given twice") }
            if let allowed, !allowed.contains(key) {
                let hint = Self.suggestion(for: key, among: allowed).map { " (did you mean '\($0)'?)" } ?? ""
                throw named.error(
                    "unknown field '\(Self.quoted(key))'\(hint); expected one of: \(allowed.joined(separator: ", "))")
            }
            entries.append((key, value))
        }
        return entries
    }

    /// The mapping as a dictionary, for lookups by key.
    func fields(allowed: [String]) throws(TaskFileError) -> Fields {
        Fields(owner: self, entries: try mapping(allowed: allowed))
    }

    func sequence() throws(TaskFileError) -> [TaskNode] {
        guard case .sequence(let sequence) = node else { throw error("expected a list, got \(kind)") }
        return sequence.enumerated().map { element($0.element, index: $0.offset) }
    }

    // MARK: Scalars

    /// A scalar's text. A NUL byte is refused: a program receives its arguments and variables as C strings,
    /// which would cut the value there while the store kept it whole.
    func string() throws(TaskFileError) -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a string, got \(kind)") }
        guard !scalar.string.contains("\u{0}") else { throw error("a value may not hold a NUL character") }
        return scalar.string
    }

    func nonEmptyString() throws(TaskFileError) -> String {
        let value = try string()
        guard !value.isEmpty else { throw error("must not be empty") }
        return value
    }

    /// A metric's name: text that starts with a letter or `_` (`ttft_ms_p99`, `c64.requests_per_s`), never a
    /// number, a boolean or null, which YAML would otherwise hand over as the text `-1` or `true`.
    func metricName() throws(TaskFileError) -> String {
        let value = try nonEmptyString()
        if case .scalar(let scalar) = node, scalar.style == .plain,
            Double(value) != nil || ["true", "false", "True", "False", "TRUE", "FALSE", "null", "~"].contains(value)
        {
            throw error("expected a metric's name, got \(describe)")
        }
        guard let first = value.unicodeScalars.first, first == "_" || first.properties.isAlphabetic else {
            throw error("a metric's name starts with a letter or '_', got '\(Self.quoted(value))'")
        }
        return value
    }

    func int() throws(TaskFileError) -> Int {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Int(scalar.string) else {
            throw error("expected an integer, got \(describe)")
        }
        return value
    }

    func int(in range: ClosedRange<Int>) throws(TaskFileError) -> Int {
        let value = try int()
        guard range.contains(value) else {
            throw error("expected an integer from \(range.lowerBound) to \(range.upperBound), got \(value)")
        }
        return value
    }

    func double() throws(TaskFileError) -> Double {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Double(scalar.string),
            value.isFinite
        else {
            throw error("expected a number, got \(describe)")
        }
        return value
    }

    func bool() throws(TaskFileError) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain else {
            throw error("expected true or false, got \(describe)")
        }
        switch scalar.string {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: throw error("expected true or false, got \(describe)")
        }
    }

    /// A duration: a number of seconds, or text like `90s`, `10m`, `1h30m`, `500ms`, at most
    /// ``Swift/Duration/longestLimit`` (a year): anything longer is a typo, and would not fit a timer.
    func duration() throws(TaskFileError) -> Duration {
        let seconds = try seconds()
        guard seconds <= Duration.longestLimit.seconds else {
            throw error("a duration is at most 366d (a year), got '\(scalarText ?? "")'")
        }
        guard seconds >= 0.001 else { throw error("a duration is at least 1ms, got '\(scalarText ?? "")'") }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    private var scalarText: String? {
        guard case .scalar(let scalar) = node else { return nil }
        return String(scalar.string.prefix(40))
    }

    private func seconds() throws(TaskFileError) -> Double {
        guard case .scalar(let scalar) = node else { throw error("expected a duration like 90s or 10m, got \(kind)") }
        let text = scalar.string.trimmingCharacters(in: .whitespaces)
        if let plain = Double(text), plain.isFinite, plain > 0 { return plain }
        var total = 0.0
        var number = ""
        var rest = Substring(text)
        var matchedAny = false
        while let character = rest.first {
            if character.isNumber || character == "." {
                number.append(character)
                rest = rest.dropFirst()
                continue
            }
            let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
            guard let value = Double(number), let (unit, factor) = units.first(where: { rest.hasPrefix($0.0) }) else {
                throw error("expected a duration like 90s, 10m or 1h30m, got '\(text.prefix(40))'")
            }
            total += value * factor
            rest = rest.dropFirst(unit.count)
            number = ""
            matchedAny = true
        }
        guard matchedAny, number.isEmpty, total > 0, total.isFinite else {
            throw error("expected a duration like 90s, 10m or 1h30m, got '\(text.prefix(40))'")
        }
        return total
    }

    /// A scalar as a parameter value: plain `true`/`false` are booleans, plain numbers are numbers, and
    /// anything else (or anything quoted) is a string.
    func parameterValue() throws(TaskFileError) -> ParameterValue {
        guard case .scalar(let scalar) = node else { throw error("expected a single value, got \(kind)") }
        let text = try string()
        guard scalar.style == .plain else { return .string(text) }
        if text == "true" { return .bool(true) }
        if text == "false" { return .bool(false) }
        if let value = Int(text) { return .int(value) }
        if let value = Double(text), value.isFinite { return .double(value) }
        return .string(text)
    }

    /// Any node as a JSON value, for strategy options.
    func jsonValue() throws(TaskFileError) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            if scalar.style != .plain { return .string(scalar.string) }
            switch try parameterValue() {
            case .bool(let value): return .bool(value)
            case .int(let value): return .number(Double(value))
            case .double(let value): return .number(value)
            case .string(let value): return value == "null" || value == "~" ? .null : .string(value)
            }
        case .sequence:
            var values: [JSONValue] = []
            for element in try sequence() { values.append(try element.jsonValue()) }
            return .array(values)
        case .mapping:
            var members: [String: JSONValue] = [:]
            for (key, value) in try mapping() { members[key] = try value.jsonValue() }
            return .object(members)
        case .alias:
            throw error("YAML aliases are not supported here")
        }
    }

    var kind: String {
        switch node {
        case .scalar: "a single value"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    var describe: String {
        if case .scalar(let scalar) = node { return "'\(Self.quoted(scalar.string))'" }
        return kind
    }

    /// Text from the file as a message quotes it: at most 60 characters, so an error stays readable however
    /// long the value.
    static func quoted(_ text: String) -> String {
        text.count <= 60 ? text : String(text.prefix(57)) + "..."
    }

    /// The allowed key closest to a misspelt one, if it is close enough to be what was meant.
    static func suggestion(for key: String, among allowed: [String]) -> String? {
        Suggestion.closest(to: key, among: allowed)
    }
}

/// A mapping's entries by key, remembering the mapping for "missing field" errors.
struct Fields {
    let owner: TaskNode
    let entries: [(key: String, value: TaskNode)]

    subscript(key: String) -> TaskNode? {
        entries.first { $0.key == key }?.value
    }

    func required(_ key: String, _ expected: String) throws(TaskFileError) -> TaskNode {
        guard let value = self[key] else {
            let path = owner.path.isEmpty ? key : "\(owner.path).\(key)"
            throw TaskFileError(
                file: owner.file,
                line: owner.line,
                column: owner.column,
                field: path,
                message: "missing required field '\(key)' (\(expected))"
            )
        }
        return value
    }
}
