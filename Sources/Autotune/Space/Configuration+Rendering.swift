/// Rendering a configuration into what an experiment's process receives: flags, placeholders, variables.
extension Configuration {
    /// The configuration as command-line flags in the space's order.
    ///
    /// A `true` boolean is a bare flag and a `false` one is left out, as vLLM, SGLang and llama.cpp expect;
    /// every other value follows its flag as a separate argument (`--max-num-seqs 64`). Parameters named in
    /// `excluding` (those the template already places) are skipped.
    public func flags(in space: SearchSpace, excluding: Set<String> = []) -> [String] {
        var arguments: [String] = []
        for parameter in space.parameters where !excluding.contains(parameter.name) {
            guard let value = values[parameter.name] else { continue }
            switch value {
            case .bool(true): arguments.append(parameter.flagName)
            case .bool(false): continue
            default: arguments += [parameter.flagName, value.text]
            }
        }
        return arguments
    }

    /// The values as placeholder substitutions, by parameter name.
    public var placeholderValues: [String: String] {
        values.mapValues(\.text)
    }
}

/// A string with `{name}` placeholders, such as one argument of a command template.
///
/// `{{` and `}}` stand for literal braces. Names may hold letters, digits, `_`, `-` and `.`.
public struct Template: Sendable, Hashable, Codable {
    /// The template text as written.
    public var text: String

    /// Creates a template.
    public init(_ text: String) { self.text = text }

    /// The placeholder names the template uses, in order of appearance.
    public var placeholders: [String] {
        var names: [String] = []
        _ = try? render { name in
            names.append(name)
            return ""
        }
        return names
    }

    /// The text with each placeholder replaced by `values[name]`.
    public func render(_ values: [String: String]) throws(TemplateError) -> String {
        try render { name throws(TemplateError) in
            guard let value = values[name] else {
                if name.hasPrefix("env.") {
                    throw TemplateError(template: text, message: "environment variable \(name.dropFirst(4)) is not set")
                }
                throw TemplateError(template: text, message: "unknown placeholder {\(name)}")
            }
            return value
        }
    }

    private func render(_ lookup: (String) throws(TemplateError) -> String) throws(TemplateError) -> String {
        var output = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            if character == "{" {
                if next < text.endIndex, text[next] == "{" {
                    output.append("{")
                    index = text.index(after: next)
                    continue
                }
                guard let close = text[next...].firstIndex(of: "}") else {
                    throw TemplateError(template: text, message: "'{' is not closed (write '{{' for a literal brace)")
                }
                let name = String(text[next..<close])
                guard !name.isEmpty,
                    name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." })
                else {
                    throw TemplateError(template: text, message: "'{\(name)}' is not a placeholder name")
                }
                output += try lookup(name)
                index = text.index(after: close)
            } else if character == "}" {
                guard next < text.endIndex, text[next] == "}" else {
                    throw TemplateError(template: text, message: "unmatched '}' (write '}}' for a literal brace)")
                }
                output.append("}")
                index = text.index(after: next)
            } else {
                output.append(character)
                index = next
            }
        }
        return output
    }
}

/// A template that cannot be rendered: an unknown placeholder or unbalanced braces.
public struct TemplateError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The template text.
    public var template: String
    /// What is wrong.
    public var message: String

    /// A one-line explanation naming the template.
    public var description: String { "\(message) in \"\(template)\"" }
}
