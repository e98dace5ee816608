public import Foundation

/// A search method, driven by ask and tell.
///
/// The loop calls ``ask(_:history:)`` whenever it has free slots and ``tell(_:)`` once for every finished
/// trial, failures included. Between the two it checkpoints ``state`` to the study's store; a strategy
/// rebuilt from that state must propose exactly what the original would have, so a resumed study continues
/// as if it had never stopped.
///
/// Both are asynchronous so a strategy may wait without holding a thread (a plug-in waiting for its process's
/// reply); a strategy that computes (a model fit) simply implements them synchronously. The loop calls them off
/// its own actor, one at a time and in the order trials finished, so they need no locking of their own.
public protocol Strategy: Sendable {
    /// Everything the strategy needs to continue: its random generator, its cursor, its observations.
    associatedtype State: Codable & Sendable & Equatable

    /// The current state, checkpointed after every ask and every tell.
    var state: State { get }

    /// Up to `count` new configurations.
    ///
    /// `history` holds the finished trials and those still running; a strategy never returns a
    /// configuration that is running, nor, in a finite space, one already tried. Fewer than `count` (or
    /// none) means the strategy has nothing more to propose right now.
    mutating func ask(_ count: Int, history: StudyHistory) async throws -> [Configuration]

    /// Feeds back a finished trial: completed, failed or pruned.
    mutating func tell(_ trial: Trial) async throws

    /// Whether the strategy will never propose anything again (a grid that ran out, a finite space that is
    /// used up).
    var isExhausted: Bool { get }

    /// How many configurations the strategy can ever propose, when it knows (a grid's size), so progress can
    /// show how far along a study is.
    var proposalLimit: Int? { get }

    /// The measured configuration to deploy, when the strategy's models can say better than the luckiest
    /// measurement: the one they expect best among those they expect to meet every hard constraint. `nil` leaves
    /// the choice to the measurements.
    mutating func recommendation() async -> StrategyRecommendation?
}

/// What a strategy's models recommend: a configuration it was told of, what they expect of it, and how sure they
/// are that it meets each hard constraint.
public struct StrategyRecommendation: Sendable, Hashable, Codable {
    /// The configuration, one of the measured ones.
    public var configuration: Configuration
    /// The mean of the score's measurements of the configuration (a failed trial's objective counted too).
    public var measuredScore: Double?
    /// For each hard constraint, in the objective's order, the probability its true value is within the limit.
    public var constraintProbabilities: [Double]
    /// The probability that it runs at all (the crash model's), when some trial crashed.
    public var runProbability: Double?

    /// Creates a recommendation.
    public init(
        configuration: Configuration, measuredScore: Double?, constraintProbabilities: [Double],
        runProbability: Double?
    ) {
        self.configuration = configuration
        self.measuredScore = measuredScore
        self.constraintProbabilities = constraintProbabilities
        self.runProbability = runProbability
    }

    /// The probability that every hard constraint holds and it runs, taking them as independent.
    public var feasibility: Double { constraintProbabilities.reduce(runProbability ?? 1, *) }
}

extension Strategy {
    /// Most strategies can propose without end.
    public var proposalLimit: Int? { nil }

    /// Most strategies have no model to recommend with.
    public mutating func recommendation() async -> StrategyRecommendation? { nil }

    /// The state as JSON, as the store keeps it.
    public func encodedState() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(state)
    }

    /// Decodes a state this strategy type encoded.
    public static func decodeState(_ data: Data) throws -> State {
        try JSONDecoder().decode(State.self, from: data)
    }
}

/// What a strategy is built from: the space, the objective, the study's seed and the strategy's options.
public struct StrategyContext: Sendable {
    /// The space to search.
    public var space: SearchSpace
    /// The objective, for strategies that model scores.
    public var objective: Objective
    /// The study's seed.
    public var seed: UInt64
    /// The `strategy:` options from the task file, except `name`.
    public var options: [String: JSONValue]
    /// Values of the names known constraints may read besides parameters (`gpus`), when known.
    public var constants: [String: Double]

    /// Creates a context.
    public init(
        space: SearchSpace, objective: Objective, seed: UInt64, options: [String: JSONValue] = [:],
        constants: [String: Double] = [:]
    ) {
        self.space = space
        self.objective = objective
        self.seed = seed
        self.options = options
        self.constants = constants
    }

    /// The option `key` as an integer, checked to lie in `range`.
    public func intOption(_ key: String, default value: Int, in range: ClosedRange<Int>) throws(StrategyError) -> Int {
        guard let option = options[key] else { return value }
        guard let number = option.intValue, range.contains(number) else {
            throw StrategyError("option '\(key)' must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    /// The option `key` as one of `choices`.
    public func choiceOption(_ key: String, default value: String, choices: [String]) throws(StrategyError) -> String {
        guard let option = options[key] else { return value }
        guard let text = option.stringValue, choices.contains(text) else {
            throw StrategyError("option '\(key)' must be one of: \(choices.joined(separator: ", "))")
        }
        return text
    }

    /// Fails when an option is not among those the strategy knows.
    public func rejectUnknownOptions(_ known: Set<String>, strategy: String) throws(StrategyError) {
        if let unknown = options.keys.sorted().first(where: { !known.contains($0) }) {
            let list = known.sorted().joined(separator: ", ")
            throw StrategyError(
                "unknown option '\(unknown)' for strategy '\(strategy)' (known: \(list.isEmpty ? "none" : list))")
        }
    }
}

/// A strategy that cannot be built, restored or asked, with the reason.
public struct StrategyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public var message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}
