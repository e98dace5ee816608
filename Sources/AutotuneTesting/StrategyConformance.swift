public import Autotune
public import Foundation

/// Checks that a strategy keeps the ask/tell contract, whatever it is: built in, a Swift strategy of your
/// own, or a plug-in.
///
/// Each check plays a small study against the strategy without the loop and returns the problems it found
/// (empty when the strategy conforms), so a test can `#expect(problems.isEmpty, "\(problems)")` and see them
/// all. The space mixes every parameter kind.
public struct StrategyConformance: Sendable {
    /// Builds the strategy under test, restoring `state` when given.
    public typealias Factory = @Sendable (StrategyContext, Data?) async throws -> any Strategy

    private let factory: Factory
    private let options: [String: JSONValue]
    /// Whether the strategy promises the same proposals for the same seed.
    public var deterministic: Bool

    /// A suite for the strategy `factory` builds, with `options` as from a task file.
    public init(options: [String: JSONValue] = [:], deterministic: Bool = true, factory: @escaping Factory) {
        self.factory = factory
        self.options = options
        self.deterministic = deterministic
    }

    /// A suite for a strategy registered under `name`.
    public init(
        registry: StrategyRegistry, name: String, options: [String: JSONValue] = [:], deterministic: Bool = true
    ) {
        self.init(options: options, deterministic: deterministic) { context, state in
            try await registry.make(name, context: context, state: state)
        }
    }

    /// The space every check uses: an int, a log-scaled int, a float, a log float, a categorical, a bool and a
    /// fixed value.
    public static func space() -> SearchSpace {
        try! SearchSpace([
            Parameter("a", .int(lower: 0, upper: 20, step: 2)), Parameter("b", .int(lower: 1, upper: 1024, log: true)),
            Parameter("x", .float(lower: -1, upper: 1)), Parameter("lr", .float(lower: 1e-5, upper: 1e-1, log: true)),
            Parameter("mode", .categorical([.string("fast"), .string("slow"), .int(3)])), Parameter("on", .bool),
            Parameter("fixed", .fixed(.string("k"))),
        ])
    }

    /// Every check; empty when the strategy conforms.
    public func run() async -> [String] {
        var problems = await inSpaceAndCounted()
        problems += await pendingAware()
        problems += await toleratesFailures()
        problems += await stateRoundTrip()
        problems += await reproducible()
        return problems
    }

    private func make(seed: UInt64 = 7, state: Data? = nil) async throws -> any Strategy {
        try await factory(
            StrategyContext(space: Self.space(), objective: .minimize("f"), seed: seed, options: options), state)
    }

    private static func score(_ configuration: Configuration) -> Double {
        let x = configuration["x"]?.numericValue ?? 0
        let a = configuration["a"]?.numericValue ?? 0
        return x * x + abs(a - 8) / 10 + (configuration["on"] == .bool(true) ? 0 : 0.5)
    }

    /// Plays `rounds` of ask(`batch`) then tell-all, failing every `failEvery`-th trial.
    private func play(
        _ strategy: inout any Strategy,
        history: inout StudyHistory,
        rounds: Int,
        batch: Int,
        failEvery: Int = 0
    ) async throws -> [[Configuration]] {
        var asked: [[Configuration]] = []
        for _ in 0..<rounds {
            let configurations = try await strategy.ask(batch, history: history)
            asked.append(configurations)
            var trials: [Trial] = []
            for configuration in configurations {
                var trial = Trial(number: history.count, configuration: configuration)
                trial.state = .running
                history.record(trial)
                trials.append(trial)
            }
            for var trial in trials {
                if failEvery > 0, trial.number % failEvery == 0 {
                    trial.state = .failed
                    trial.error = TrialError(stage: .run, message: "exit status 1")
                } else {
                    trial.state = .completed
                    trial.score = Self.score(trial.configuration)
                    trial.metrics = ["f": trial.score!]
                }
                history.record(trial)
                try await strategy.tell(trial)
            }
        }
        return asked
    }

    /// Only valid configurations, never more than asked for, never a configuration already in the study.
    func inSpaceAndCounted() async -> [String] {
        do {
            var strategy = try await make()
            var history = StudyHistory()
            var problems: [String] = []
            for (round, batch) in try await play(&strategy, history: &history, rounds: 8, batch: 3).enumerated() {
                if batch.count > 3 { problems.append("round \(round): asked for 3, got \(batch.count)") }
                if batch.isEmpty, !strategy.isExhausted {
                    problems.append("round \(round): no proposal from a strategy that is not exhausted")
                }
                for configuration in batch where !Self.space().contains(configuration) {
                    problems.append("round \(round): \(configuration.values) is not in the space")
                }
            }
            let all = history.finished.map(\.configuration)
            if Set(all).count != all.count { problems.append("a configuration was proposed twice") }
            return problems
        } catch {
            return ["in-space check: \(error)"]
        }
    }

    /// With trials running, a proposal never repeats one of them.
    func pendingAware() async -> [String] {
        do {
            var strategy = try await make()
            var history = StudyHistory()
            _ = try await play(&strategy, history: &history, rounds: 3, batch: 2)
            let running = try await strategy.ask(4, history: history)
            for (offset, configuration) in running.enumerated() {
                var trial = Trial(number: history.count + offset, configuration: configuration)
                trial.state = .running
                history.record(trial)
            }
            let next = try await strategy.ask(4, history: history)
            let clashes = next.filter { running.contains($0) }
            var problems: [String] = []
            if !clashes.isEmpty { problems.append("proposed \(clashes.count) configuration(s) that are running") }
            if Set(running).count != running.count || Set(next).count != next.count {
                problems.append("a batch holds the same configuration twice")
            }
            return problems
        } catch {
            return ["pending check: \(error)"]
        }
    }

    /// Failed trials are told like any other and the strategy goes on proposing.
    func toleratesFailures() async -> [String] {
        do {
            var strategy = try await make()
            var history = StudyHistory()
            let asked = try await play(&strategy, history: &history, rounds: 6, batch: 2, failEvery: 2)
            return asked.last?.isEmpty == true && !strategy.isExhausted ? ["stopped proposing after failures"] : []
        } catch {
            return ["failure check: \(error)"]
        }
    }

    /// A strategy rebuilt from its checkpoint has the same state and (when deterministic) the same next
    /// proposals as the original.
    func stateRoundTrip() async -> [String] {
        do {
            var original = try await make()
            var history = StudyHistory()
            _ = try await play(&original, history: &history, rounds: 4, batch: 2)
            let saved = try original.encodedState()
            var restored = try await make(state: saved)
            var problems: [String] = []
            if try restored.encodedState() != saved { problems.append("the restored state differs from the saved one") }
            if deterministic {
                let a = try await original.ask(3, history: history)
                let b = try await restored.ask(3, history: history)
                if a != b {
                    problems.append("a restored strategy proposed \(b.map(\.values)) instead of \(a.map(\.values))")
                }
            }
            return problems
        } catch {
            return ["checkpoint check: \(error)"]
        }
    }

    /// Two strategies with the same seed propose the same; with different seeds they do not.
    func reproducible() async -> [String] {
        guard deterministic else { return [] }
        do {
            var a = try await make(seed: 11)
            var b = try await make(seed: 11)
            var c = try await make(seed: 12)
            var historyA = StudyHistory()
            var historyB = StudyHistory()
            var historyC = StudyHistory()
            let first = try await play(&a, history: &historyA, rounds: 4, batch: 2)
            let second = try await play(&b, history: &historyB, rounds: 4, batch: 2)
            let third = try await play(&c, history: &historyC, rounds: 4, batch: 2)
            var problems: [String] = []
            if first != second { problems.append("the same seed gave different proposals") }
            if first == third { problems.append("different seeds gave the same proposals") }
            return problems
        } catch {
            return ["reproducibility check: \(error)"]
        }
    }
}
