public import Foundation

/// Builds strategies by the name a task file gives, and restores them from a checkpoint.
///
/// Comes with `grid` and `random`; a program that embeds Autotune registers its own strategies with
/// ``register(_:make:)`` before running a study.
public struct StrategyRegistry: Sendable {
    /// Builds a strategy from its context and, when resuming, its encoded state.
    public typealias Factory = @Sendable (StrategyContext, Data?) async throws -> any Strategy

    private var factories: [String: Factory] = [:]
    private var checks: [String: @Sendable (StrategyContext) throws -> Void] = [:]

    /// An empty registry.
    public init() {}

    /// The registry with the built-in strategies.
    public static var builtIn: Self {
        var registry = Self()
        registry.register("grid") { context, state in try GridSearch(context: context, state: state) }
        registry.register("random") { context, state in try RandomSearch(context: context, state: state) }
        registry.register("bayesian") { context, state in try BayesianOptimization(context: context, state: state) }
        return registry
    }

    /// Registers a strategy type under `name`, replacing any previous one.
    ///
    /// `make` receives the decoded state when a study resumes, and `nil` when it starts; validating a task file
    /// builds the strategy with it and drops it.
    public mutating func register<S: Strategy>(
        _ name: String,
        make: @escaping @Sendable (StrategyContext, S.State?) throws -> S
    ) {
        factories[name] = { context, data in
            let state = try data.map { try S.decodeState($0) }
            return try make(context, state)
        }
        checks[name] = { context in _ = try make(context, nil) }
    }

    /// Registers a strategy that starts a program or opens a connection when built (a plug-in): `make` may wait,
    /// and `check` validates its options without starting anything, which is what validating a task file does.
    public mutating func register<S: Strategy>(
        _ name: String,
        check: @escaping @Sendable (StrategyContext) throws -> Void,
        make: @escaping @Sendable (StrategyContext, S.State?) async throws -> S
    ) {
        factories[name] = { context, data in
            let state = try data.map { try S.decodeState($0) }
            return try await make(context, state)
        }
        checks[name] = check
    }

    /// Checks that `name` is registered and accepts the options of `context`, as validating a task file needs,
    /// without starting anything.
    public func check(_ name: String, context: StrategyContext) throws {
        guard let check = checks[name] else {
            throw StrategyError("unknown strategy '\(name)' (available: \(names.joined(separator: ", ")))")
        }
        try check(context)
    }

    /// The registered names, sorted.
    public var names: [String] { factories.keys.sorted() }

    /// Builds the strategy called `name`, restoring `state` when given.
    public func make(_ name: String, context: StrategyContext, state: Data? = nil) async throws -> any Strategy {
        guard let factory = factories[name] else {
            throw StrategyError("unknown strategy '\(name)' (available: \(names.joined(separator: ", ")))")
        }
        return try await factory(context, state)
    }
}
