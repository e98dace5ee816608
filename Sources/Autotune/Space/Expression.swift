/// A small expression over parameter values, for constraints between parameters
/// (`tensor_parallel_size * pipeline_parallel_size <= gpus`) and conditions on them (`speculative == true`).
///
/// Numbers, `'strings'` or `"strings"`, `true`/`false`, names (parameters, and constants such as `gpus`),
/// `+ - * /`, comparisons `< <= > >= == !=`, `and`, `or`, `not` and parentheses, with the usual precedence.
/// Kept as its source text, which is what is stored and shown, and parsed once.
public struct ParameterExpression: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The text as written.
    public let source: String
    private let root: Node

    indirect enum Node: Sendable, Hashable {
        case number(Double)
        case string(String)
        case bool(Bool)
        case name(String)
        case negate(Node)
        case not(Node)
        case binary(Operator, Node, Node)
    }

    enum Operator: String, Sendable, Hashable {
        case add = "+", subtract = "-", multiply = "*", divide = "/"
        case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">=", equal = "==", notEqual = "!="
        case and, or
    }

    /// A value while evaluating: a number, a string, a truth value, or missing (an inactive parameter, an
    /// unknown constant), which makes whatever uses it missing too.
    public enum Value: Sendable, Hashable {
        /// A number (ints and floats alike).
        case number(Double)
        /// A string.
        case string(String)
        /// A truth value.
        case bool(Bool)
        /// No value.
        case missing
    }

    /// Parses `source`; ``ExpressionError`` gives the 0-based character offset of the problem.
    public init(_ source: String) throws(ExpressionError) {
        var parser = Parser(Array(source))
        let root = try parser.expression()
        try parser.expectEnd()
        self.source = source
        self.root = root
    }

    /// Every name the expression reads.
    public var names: Set<String> {
        var names: Set<String> = []
        func visit(_ node: Node) {
            switch node {
            case .name(let name): names.insert(name)
            case .negate(let inner), .not(let inner): visit(inner)
            case .binary(_, let left, let right):
                visit(left)
                visit(right)
            case .number, .string, .bool: break
            }
        }
        visit(root)
        return names
    }

    /// A bound on one name: `ttft_ms_p99 <= 800` (or `800 >= ttft_ms_p99`).
    public struct Bound: Sendable, Hashable {
        /// The name bounded.
        public var name: String
        /// Whether the value must stay at or below the limit (`<`, `<=`) rather than above it.
        public var isUpper: Bool
        /// The limit.
        public var limit: Double

        /// How far `value` is past the limit (0 when it meets it).
        public func miss(_ value: Double) -> Double {
            max(0, isUpper ? value - limit : limit - value)
        }
    }

    /// The bounds the expression is made of when it is comparisons of a name with a number joined by `and`;
    /// empty otherwise (an `or`, arithmetic, equality).
    public var comparisons: [Bound] {
        func bounds(_ node: Node) -> [Bound]? {
            switch node {
            case .binary(.and, let left, let right):
                guard let a = bounds(left), let b = bounds(right) else { return nil }
                return a + b
            case .binary(let op, .name(let name), .number(let limit)):
                switch op {
                case .less, .lessOrEqual: return [Bound(name: name, isUpper: true, limit: limit)]
                case .greater, .greaterOrEqual: return [Bound(name: name, isUpper: false, limit: limit)]
                default: return nil
                }
            case .binary(let op, .number(let limit), .name(let name)):
                switch op {
                case .less, .lessOrEqual: return [Bound(name: name, isUpper: false, limit: limit)]
                case .greater, .greaterOrEqual: return [Bound(name: name, isUpper: true, limit: limit)]
                default: return nil
                }
            default:
                return nil
            }
        }
        return bounds(root) ?? []
    }

    /// The value with `values` for parameters and `constants` for other names; a name found in neither is
    /// missing.
    public func evaluate(_ values: [String: ParameterValue], constants: [String: Double] = [:]) -> Value {
        Self.evaluate(root, values, constants)
    }

    /// Whether the expression holds: true, or not decidable because something it reads is missing (a constraint
    /// on an inactive parameter does not apply).
    public func holds(_ values: [String: ParameterValue], constants: [String: Double] = [:]) -> Bool {
        switch evaluate(values, constants: constants) {
        case .bool(let value): value
        case .missing: true
        case .number(let number): number != 0
        case .string: true
        }
    }

    /// Whether the expression is true; missing counts as false (a condition on an inactive parameter is not met).
    public func isTrue(_ values: [String: ParameterValue], constants: [String: Double] = [:]) -> Bool {
        evaluate(values, constants: constants) == .bool(true)
    }

    /// The source text.
    public var description: String { source }

    private static func evaluate(_ node: Node, _ values: [String: ParameterValue], _ constants: [String: Double])
        -> Value
    {
        switch node {
        case .number(let number): return .number(number)
        case .string(let text): return .string(text)
        case .bool(let value): return .bool(value)
        case .name(let name):
            if let value = values[name] {
                switch value {
                case .int(let number): return .number(Double(number))
                case .double(let number): return .number(number)
                case .string(let text): return .string(text)
                case .bool(let flag): return .bool(flag)
                }
            }
            return constants[name].map(Value.number) ?? .missing
        case .negate(let inner):
            guard case .number(let number) = evaluate(inner, values, constants) else { return .missing }
            return .number(-number)
        case .not(let inner):
            guard case .bool(let value) = evaluate(inner, values, constants) else { return .missing }
            return .bool(!value)
        case .binary(let op, let leftNode, let rightNode):
            let left = evaluate(leftNode, values, constants)
            // `and`/`or` decide on one side when they can, as a reader expects.
            if op == .and, left == .bool(false) { return .bool(false) }
            if op == .or, left == .bool(true) { return .bool(true) }
            let right = evaluate(rightNode, values, constants)
            return apply(op, left, right)
        }
    }

    private static func apply(_ op: Operator, _ left: Value, _ right: Value) -> Value {
        switch (op, left, right) {
        case (.and, .bool(let a), .bool(let b)): return .bool(a && b)
        case (.or, .bool(let a), .bool(let b)): return .bool(a || b)
        case (.and, _, _), (.or, _, _): return .missing
        case (_, .missing, _), (_, _, .missing): return .missing
        case (.equal, _, _): return .bool(left == right)
        case (.notEqual, _, _): return .bool(left != right)
        case (_, .number(let a), .number(let b)):
            switch op {
            case .add: return .number(a + b)
            case .subtract: return .number(a - b)
            case .multiply: return .number(a * b)
            case .divide: return b == 0 ? .missing : .number(a / b)
            case .less: return .bool(a < b)
            case .lessOrEqual: return .bool(a <= b)
            case .greater: return .bool(a > b)
            case .greaterOrEqual: return .bool(a >= b)
            case .equal, .notEqual, .and, .or: return .missing
            }
        case (_, .string(let a), .string(let b)):
            switch op {
            case .less: return .bool(a < b)
            case .lessOrEqual: return .bool(a <= b)
            case .greater: return .bool(a > b)
            case .greaterOrEqual: return .bool(a >= b)
            default: return .missing
            }
        default:
            return .missing
        }
    }

    /// Decodes from the stored source text.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(text)
        } catch {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "expression '\(text)': \(error.message)"))
        }
    }

    /// Encodes as the source text.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(source)
    }

    /// Recursive descent: `or` < `and` < `not` < comparison < `+ -` < `* /` < unary `-` < atoms.
    private struct Parser {
        let characters: [Character]
        var index = 0

        init(_ characters: [Character]) { self.characters = characters }

        mutating func expression() throws(ExpressionError) -> Node { try or() }

        mutating func expectEnd() throws(ExpressionError) {
            skipSpace()
            guard index == characters.count else {
                throw ExpressionError("unexpected '\(characters[index])'", offset: index)
            }
        }

        private mutating func or() throws(ExpressionError) -> Node {
            var node = try and()
            while keyword("or") { node = .binary(.or, node, try and()) }
            return node
        }

        private mutating func and() throws(ExpressionError) -> Node {
            var node = try not()
            while keyword("and") { node = .binary(.and, node, try not()) }
            return node
        }

        private mutating func not() throws(ExpressionError) -> Node {
            if keyword("not") { return .not(try not()) }
            return try comparison()
        }

        private mutating func comparison() throws(ExpressionError) -> Node {
            let left = try sum()
            for op in [Operator.lessOrEqual, .greaterOrEqual, .equal, .notEqual, .less, .greater]
            where symbol(op.rawValue) {
                return .binary(op, left, try sum())
            }
            return left
        }

        private mutating func sum() throws(ExpressionError) -> Node {
            var node = try product()
            while true {
                if symbol("+") {
                    node = .binary(.add, node, try product())
                } else if symbol("-") {
                    node = .binary(.subtract, node, try product())
                } else {
                    return node
                }
            }
        }

        private mutating func product() throws(ExpressionError) -> Node {
            var node = try unary()
            while true {
                if symbol("*") {
                    node = .binary(.multiply, node, try unary())
                } else if symbol("/") {
                    node = .binary(.divide, node, try unary())
                } else {
                    return node
                }
            }
        }

        private mutating func unary() throws(ExpressionError) -> Node {
            if symbol("-") { return .negate(try unary()) }
            return try atom()
        }

        private mutating func atom() throws(ExpressionError) -> Node {
            skipSpace()
            guard index < characters.count else {
                throw ExpressionError("the expression ends too early", offset: index)
            }
            let start = index
            let character = characters[index]
            if character == "(" {
                index += 1
                let inner = try expression()
                guard symbol(")") else { throw ExpressionError("')' is missing", offset: index) }
                return inner
            }
            if character == "'" || character == "\"" {
                index += 1
                var text = ""
                while index < characters.count, characters[index] != character {
                    text.append(characters[index])
                    index += 1
                }
                guard index < characters.count else { throw ExpressionError("the string is not closed", offset: start) }
                index += 1
                return .string(text)
            }
            if character.isNumber || character == "." {
                while index < characters.count,
                    characters[index].isNumber || characters[index] == "." || characters[index] == "e"
                        || (characters[index] == "-" || characters[index] == "+") && characters[index - 1] == "e"
                {
                    index += 1
                }
                guard let number = Double(String(characters[start..<index])), number.isFinite else {
                    throw ExpressionError("'\(String(characters[start..<index]))' is not a number", offset: start)
                }
                return .number(number)
            }
            if character.isLetter || character == "_" {
                while index < characters.count,
                    characters[index].isLetter || characters[index].isNumber
                        || "_-.".contains(characters[index])
                            && index + 1 < characters.count
                            && (characters[index + 1].isLetter || characters[index + 1].isNumber)
                {
                    index += 1
                }
                let word = String(characters[start..<index])
                switch word {
                case "true": return .bool(true)
                case "false": return .bool(false)
                case "and", "or", "not": throw ExpressionError("'\(word)' needs something before it", offset: start)
                default: return .name(word)
                }
            }
            throw ExpressionError("unexpected '\(character)'", offset: start)
        }

        private mutating func skipSpace() {
            while index < characters.count, characters[index].isWhitespace { index += 1 }
        }

        /// Consumes `text` when it comes next (`<` is not taken from `<=`).
        private mutating func symbol(_ text: String) -> Bool {
            skipSpace()
            let expected = Array(text)
            guard index + expected.count <= characters.count,
                Array(characters[index..<(index + expected.count)]) == expected
            else { return false }
            if expected.count == 1, "<>=!".contains(expected[0]), index + 1 < characters.count,
                characters[index + 1] == "="
            {
                return false
            }
            index += expected.count
            return true
        }

        /// Consumes the word `word` when it comes next as a whole word.
        private mutating func keyword(_ word: String) -> Bool {
            skipSpace()
            let expected = Array(word)
            guard index + expected.count <= characters.count,
                Array(characters[index..<(index + expected.count)]) == expected
            else { return false }
            let after = index + expected.count
            if after < characters.count,
                characters[after].isLetter || characters[after].isNumber
                    || characters[after] == "_"
            {
                return false
            }
            index = after
            return true
        }
    }
}

/// An expression that cannot be parsed, with where.
public struct ExpressionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// The 0-based offset in the expression's text.
    public var offset: Int

    /// Creates an error.
    public init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    /// The message and the offset.
    public var description: String { "\(message) (at character \(offset + 1))" }
}
