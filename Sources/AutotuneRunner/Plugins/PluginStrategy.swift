public import Autotune
import Foundation

/// A strategy running in another process, in any language, spoken to in JSON lines over its stdin and stdout
/// (protocol version 2, strategies/README.md; plug-ins that speak version 1 work for studies of one objective).
///
/// Autotune sends `hello` (the space, the direction, the seed, the options), then `ask`, `tell`, `save` and
/// `load`; each request gets one reply line. The strategy's state is what the plug-in's `save` returns, taken
/// after every ask and tell, so checkpoints and resume work as for built-in strategies. A reply that is not
/// JSON, an `error` reply, an answer outside the space or over the count, a plug-in that exits, or one that
/// does not answer within `timeout` seconds is a ``StrategyError`` quoting the plug-in's stderr.
public struct PluginStrategy: Strategy {
    /// The plug-in's saved state and whether it said it is exhausted.
    public struct State: Sendable, Hashable, Codable {
        /// What the plug-in's `save` returned.
        public var plugin: JSONValue
        /// Set when the plug-in answered `"exhausted": true`.
        public var exhausted: Bool
    }

    /// The protocol version this client speaks.
    public static let protocolVersion = 2

    /// The latest checkpoint.
    public private(set) var state: State
    private let connection: PluginConnection
    private let space: SearchSpace
    private let label: String
    private let objective: Objective

    /// Checks a plug-in's options without starting it: `command` is a non-empty list of strings whose program
    /// can be run (found on `PATH`, or an executable file), and when it is an interpreter given a script, the
    /// script exists; `timeout` is a number of seconds.
    public static func check(_ context: StrategyContext) throws {
        guard case .array(let parts)? = context.options["command"], !parts.isEmpty,
            let command = Optional(parts.compactMap(\.stringValue)), command.count == parts.count
        else {
            throw StrategyError("a plug-in strategy needs 'command': the program and its arguments as a list")
        }
        if let timeout = context.options["timeout"], (timeout.doubleValue ?? 0) <= 0 {
            throw StrategyError("option 'timeout' must be a number of seconds above 0")
        }
        let program = command[0]
        guard let resolved = ProcessLauncher.executable(program) else {
            throw StrategyError(
                program.contains("/")
                    ? "option 'command': \(program) does not exist or is not executable"
                    : "option 'command': '\(program)' is not found on PATH")
        }
        let interpreters = ["python", "python3", "node", "ruby", "perl", "sh", "bash", "Rscript", "julia"]
        if interpreters.contains(URL(fileURLWithPath: resolved).lastPathComponent), command.count > 1,
            !command[1].hasPrefix("-"), !FileManager.default.fileExists(atPath: command[1])
        {
            throw StrategyError("option 'command': the script \(command[1]) does not exist")
        }
    }

    /// Starts the plug-in named by `context.options["command"]` (an argv) and greets it; restores `state` when
    /// given.
    public init(context: StrategyContext, state: State? = nil) async throws {
        guard case .array(let parts)? = context.options["command"], !parts.isEmpty,
            let command = Optional(parts.compactMap(\.stringValue)), command.count == parts.count
        else {
            throw StrategyError("a plug-in strategy needs 'command': the program and its arguments as a list")
        }
        let timeout = context.options["timeout"]?.doubleValue ?? 60
        var options = context.options
        options["command"] = nil
        options["timeout"] = nil
        label = command.joined(separator: " ")
        space = context.space
        objective = context.objective
        connection = PluginConnection(command: command, timeout: .milliseconds(Int64(timeout * 1000)), label: label)
        try await connection.start()
        let objectives = context.objective.allGoals.map { goal -> JSONValue in
            .object(["name": .string(goal.label), "direction": .string(goal.direction.rawValue)])
        }
        let hello = try await connection.request([
            "type": .string("hello"), "protocol": .number(Double(Self.protocolVersion)),
            "space": Self.describe(context.space), "direction": .string(context.objective.direction.rawValue),
            "seed": .number(Double(context.seed)), "options": .object(options),
            "constants": .object(context.constants.mapValues { .number($0) }),
            "objectives": .array(objectives),
        ])
        if let version = hello["protocol"]?.intValue {
            guard version == 1 || version == Self.protocolVersion else {
                throw StrategyError(
                    "plug-in '\(label)' speaks protocol \(version); Autotune speaks 1 and \(Self.protocolVersion)")
            }
            if version == 1, context.objective.isMultiObjective {
                throw StrategyError(
                    "plug-in '\(label)' speaks protocol 1, which has one objective; this study has \(objectives.count) (protocol 2 tells each trial's 'values')"
                )
            }
        }
        if let state {
            _ = try await connection.request(["type": .string("load"), "state": state.plugin])
            self.state = state
        } else {
            self.state = State(
                plugin: try await connection.request(["type": .string("save")])["state"] ?? .null, exhausted: false)
        }
    }

    /// Whether the plug-in said it will propose nothing more.
    public var isExhausted: Bool { state.exhausted }

    /// Asks the plug-in for up to `count` configurations and checks each against the space.
    public mutating func ask(_ count: Int, history: StudyHistory) async throws -> [Configuration] {
        let running = history.runningTrials.map { trial -> JSONValue in
            .object(["number": .number(Double(trial.number)), "configuration": Self.encode(trial.configuration)])
        }
        let reply = try await connection.request([
            "type": .string("ask"), "count": .number(Double(count)), "running": .array(running),
            "trials": .number(Double(history.count)),
        ])
        guard case .array(let items)? = reply["configurations"] else {
            throw StrategyError("plug-in '\(label)' answered an ask without a 'configurations' list: \(reply)")
        }
        guard items.count <= count else {
            throw StrategyError("plug-in '\(label)' returned \(items.count) configurations for an ask of \(count)")
        }
        let configurations = try items.map { item -> Configuration in
            guard case .object(let members) = item else {
                throw StrategyError("plug-in '\(label)' returned a configuration that is not an object: \(item)")
            }
            var values: [String: ParameterValue] = [:]
            for (name, value) in members {
                switch value {
                case .bool(let flag): values[name] = .bool(flag)
                case .number(let number):
                    values[name] =
                        number == number.rounded() && abs(number) < 1e15 ? .int(Int(number)) : .double(number)
                case .string(let text): values[name] = .string(text)
                default:
                    throw StrategyError(
                        "plug-in '\(label)' gave '\(name)' the value \(value), which is no parameter value")
                }
            }
            for parameter in space.parameters where values[parameter.name] == nil {
                if case .fixed(let fixed) = parameter.domain { values[parameter.name] = fixed }
            }
            do {
                return try space.coerce(values)
            } catch {
                throw StrategyError("plug-in '\(label)' proposed a configuration outside the space: \(error)")
            }
        }
        state.exhausted = reply["exhausted"]?.boolValue ?? false
        try await checkpoint()
        return configurations
    }

    /// Tells the plug-in a finished trial.
    public mutating func tell(_ trial: Trial) async throws {
        var message: [String: JSONValue] = [
            "number": .number(Double(trial.number)), "configuration": Self.encode(trial.configuration),
            "state": .string(trial.state.rawValue),
            "metrics": .object(trial.metrics.mapValues { .number($0) }),
        ]
        if let score = trial.score { message["score"] = .number(score) }
        if let values = objective.values(trial.metrics) { message["values"] = .array(values.map { .number($0) }) }
        if let error = trial.error {
            message["error"] = .object(["stage": .string(error.stage.rawValue), "message": .string(error.message)])
        }
        _ = try await connection.request(["type": .string("tell"), "trial": .object(message)])
        try await checkpoint()
    }

    private mutating func checkpoint() async throws {
        state.plugin = try await connection.request(["type": .string("save")])["state"] ?? .null
    }

    private static func encode(_ configuration: Configuration) -> JSONValue {
        .object(configuration.values.mapValues(encode))
    }

    private static func encode(_ value: ParameterValue) -> JSONValue {
        switch value {
        case .int(let number): .number(Double(number))
        case .double(let number): .number(number)
        case .string(let text): .string(text)
        case .bool(let flag): .bool(flag)
        }
    }

    /// The space as the plug-in sees it: one object per parameter, in order.
    static func describe(_ space: SearchSpace) -> JSONValue {
        .object([
            "parameters": .array(
                space.parameters.map { parameter in
                    var item: [String: JSONValue] = ["name": .string(parameter.name)]
                    switch parameter.domain {
                    case .int(let lower, let upper, let step, let log):
                        item["type"] = .string("int")
                        item["min"] = .number(Double(lower))
                        item["max"] = .number(Double(upper))
                        item["step"] = .number(Double(step))
                        item["log"] = .bool(log)
                    case .float(let lower, let upper, let log):
                        item["type"] = .string("float")
                        item["min"] = .number(lower)
                        item["max"] = .number(upper)
                        item["log"] = .bool(log)
                    case .categorical(let values):
                        item["type"] = .string("categorical")
                        item["values"] = .array(values.map(encode))
                    case .bool:
                        item["type"] = .string("bool")
                    case .fixed(let value):
                        item["type"] = .string("fixed")
                        item["value"] = encode(value)
                    }
                    if let condition = parameter.condition { item["when"] = .string(condition.source) }
                    return .object(item)
                }
            ),
            "constraints": .array(space.constraints.map { .string($0.source) }),
        ])
    }
}

extension StrategyRegistry {
    /// The built-in strategies plus `plugin`, a strategy in another process (`strategy: {command: [...]}`).
    public static var standard: Self {
        var registry = builtIn
        registry.register("plugin", check: { try PluginStrategy.check($0) }) { context, state in
            try await PluginStrategy(context: context, state: state)
        }
        return registry
    }
}
