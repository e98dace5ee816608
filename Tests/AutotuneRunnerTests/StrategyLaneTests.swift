import Autotune
import AutotuneRunner
import AutotuneTesting
import Foundation
import Synchronization
import Testing

/// Asking and telling run off the loop's actor: a strategy that takes its time never keeps the loop from hearing a
/// stop, and the same seed and finish order still give the same proposals.
@Suite(.serialized, .timeLimit(.minutes(5))) struct StrategyLaneTests {
    /// A one-shot signal a test can wait for, with a limit so a missing signal fails instead of hanging.
    final class Gate: Sendable {
        private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Bool, Never>])>((false, []))

        func open() {
            let waiters = state.withLock { state in
                state.open = true
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: true) }
        }

        /// Whether the gate opened within `limit`.
        func wait(_ limit: Duration = .seconds(30)) async -> Bool {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    await withCheckedContinuation { continuation in
                        let open = self.state.withLock { state in
                            if !state.open { state.waiters.append(continuation) }
                            return state.open
                        }
                        if open { continuation.resume(returning: true) }
                    }
                }
                group.addTask {
                    try? await Task.sleep(for: limit)
                    return false
                }
                let first = await group.next()!
                group.cancelAll()
                self.open()
                return first
            }
        }
    }

    /// Random search whose second ask waits for `release` after opening `asking`.
    struct WaitingStrategy: Strategy {
        var inner: RandomSearch
        let asking: Gate
        let release: Gate
        var state: RandomSearch.State { inner.state }
        var isExhausted: Bool { false }
        private var asks = 0

        init(context: StrategyContext, asking: Gate, release: Gate) throws {
            inner = try RandomSearch(context: context)
            self.asking = asking
            self.release = release
        }

        mutating func ask(_ count: Int, history: StudyHistory) async throws -> [Configuration] {
            asks += 1
            if asks == 2 {
                asking.open()
                _ = await release.wait(.seconds(60))
            }
            return try inner.ask(count, history: history)
        }

        mutating func tell(_ trial: Trial) async throws { try inner.tell(trial) }
    }

    @Test func aStopIsHeardWhileTheStrategyIsStillAsking() async throws {
        let asking = Gate()
        let release = Gate()
        let cancelled = Gate()
        var registry = StrategyRegistry.builtIn
        registry.register("waiting") { context, _ in
            try WaitingStrategy(context: context, asking: asking, release: release)
        }
        // Trial 0 ends at once, freeing a slot (so the strategy is asked again); trial 1 runs until cancelled.
        let experiment = ScriptedExperiment(delay: { trial in trial.number == 0 ? .zero : .seconds(60) }) { _ in
            .metrics(["score": 1])
        }
        let watching = CancellationWatcher(inner: experiment, cancelled: cancelled)
        let definition = try definition(
            space: SearchSpace([Parameter("x", .float(lower: 0, upper: 1))]), strategy: "waiting", maxTrials: 5,
            parallel: 2)
        try await withTestStudy(definition) { study in
            let loop = try await study.loop(experiment: watching, registry: registry)
            async let outcome = loop.run()
            #expect(await asking.wait(), "the strategy was not asked a second time")
            // The strategy is now inside its ask; the loop must still hear the stop and cancel trial 1.
            loop.requestStop(.cancel)
            let heard = await cancelled.wait()
            release.open()
            #expect(heard, "the running trial was not cancelled while the strategy was asking")
            #expect(try await outcome.status == .interrupted)
            let trials = try await study.trials()
            #expect(trials.first { $0.number == 1 }?.state == .pending)
        }
    }

    /// Two runs of a Bayesian study with the same seed, its trials finishing in the same order, propose the same
    /// configurations, also across a resume.
    @Test func theSameSeedAndFinishOrderGiveTheSameProposals() async throws {
        let space = try SearchSpace([
            Parameter("x", .float(lower: 0, upper: 1)), Parameter("n", .int(lower: 1, upper: 64, log: true)),
        ])
        let experiment = ScriptedExperiment { trial in
            let x = trial.configuration["x"]?.numericValue ?? 0
            let n = trial.configuration["n"]?.numericValue ?? 1
            return .metrics(["score": -(x - 0.3) * (x - 0.3) - abs(log2(n) - 3)])
        }
        var definition = definition(space: space, strategy: "bayesian", maxTrials: 14, parallel: 1)
        definition.strategy.options = ["initial_points": .number(4), "candidates": .number(256)]
        let straight = try await withTestStudy(definition) { study in
            _ = try await study.run(experiment: experiment)
            return try await study.trials().map(\.configuration)
        }
        let resumed = try await withTestStudy(definition) { study in
            _ = try await study.run(stoppingAfter: 7, mode: .drain, experiment: experiment)
            _ = try await study.run(experiment: experiment)
            return try await study.trials().map(\.configuration)
        }
        #expect(straight.count == 14)
        #expect(straight == resumed)
    }
}

/// Opens `cancelled` when a trial's experiment is cancelled.
struct CancellationWatcher: Experiment {
    let inner: any Experiment
    let cancelled: StrategyLaneTests.Gate

    func run(_ context: TrialContext) async throws -> ExperimentResult {
        do {
            return try await inner.run(context)
        } catch is CancellationError {
            cancelled.open()
            throw CancellationError()
        }
    }
}
