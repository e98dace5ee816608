import Autotune
import AutotuneRunner
import AutotuneTesting
import Foundation
import Synchronization
import Testing

/// Lets trials finish in a scripted order through the real loop: trial `n` returns only after trial
/// `order[i - 1]` returned and the loop started the trial that refilled its slot, so every ask sees exactly the
/// results before it and the same running trials, however the tasks are scheduled.
final class FinishOrder: Sendable {
    private struct State {
        var started: Set<Int> = []
        var returned: [Int] = []
        var waiting: [(number: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let order: [Int]
    private let parallel: Int
    private let state = Mutex(State())

    /// `order` lists every trial number in the order the trials are to finish.
    init(order: [Int], parallel: Int) {
        self.order = order
        self.parallel = parallel
    }

    /// Waits until trial `number` may return.
    func turn(of number: Int) async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                state.started.insert(number)
                state.waiting.append((number, continuation))
                return takeReady(&state)
            }
            for continuation in ready { continuation.resume() }
        }
    }

    /// Records that trial `number` is returning.
    func returned(_ number: Int) {
        let ready = state.withLock { state in
            state.returned.append(number)
            return takeReady(&state)
        }
        for continuation in ready { continuation.resume() }
    }

    /// The order the trials returned in.
    var returnedOrder: [Int] { state.withLock { $0.returned } }

    /// The waiter whose turn it is, when its predecessor returned and, while more trials are to come, the
    /// refill of the predecessor's slot has started.
    private func takeReady(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        let position = state.returned.count
        guard position < order.count else { return [] }
        let next = order[position]
        if position > 0 {
            // The refill of the slot freed by the previous return is trial `position - 1 + parallel`.
            let refill = position - 1 + parallel
            if refill < order.count, !state.started.contains(refill) { return [] }
        }
        // One at a time: the waiter after this one is released when this one returns.
        guard let index = state.waiting.firstIndex(where: { $0.number == next }) else { return [] }
        return [state.waiting.remove(at: index).continuation]
    }
}

/// Reports a smooth function of the configuration once its turn comes.
struct OrderedExperiment: Experiment {
    let finishes: FinishOrder

    func run(_ context: TrialContext) async throws -> ExperimentResult {
        await finishes.turn(of: context.trial.number)
        defer { finishes.returned(context.trial.number) }
        let x = context.trial.configuration["x"]?.numericValue ?? 0
        let y = context.trial.configuration["y"]?.numericValue ?? 0
        return ExperimentResult(metrics: ["score": (x - 0.3) * (x - 0.3) + (y - 0.6) * (y - 0.6)])
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct ParallelSearchTests {
    private func bayesianStudy(parallel: Int, trials: Int) throws -> StudyDefinition {
        var study = definition(
            space: try SearchSpace([
                Parameter("x", .float(lower: 0, upper: 1)), Parameter("y", .float(lower: 0, upper: 1)),
            ]),
            objective: .minimize("score"), strategy: "bayesian", maxTrials: trials, parallel: parallel)
        study.strategy.options = ["initial_points": .number(4), "candidates": .number(256)]
        return study
    }

    /// Runs the study with trials finishing in `order`; returns each trial's configuration by number and the
    /// order they actually returned in.
    private func run(order: [Int], parallel: Int) async throws -> (configurations: [Configuration], returned: [Int]) {
        let finishes = FinishOrder(order: order, parallel: parallel)
        return try await withTestStudy(try bayesianStudy(parallel: parallel, trials: order.count)) { study in
            let outcome = try await study.run(experiment: OrderedExperiment(finishes: finishes))
            #expect(outcome.status == .completed)
            let trials = try await study.trials().sorted { $0.number < $1.number }
            #expect(trials.allSatisfy { $0.state == .completed })
            return (trials.map(\.configuration), finishes.returnedOrder)
        }
    }

    /// Four at a time, results arriving out of start order: the same seed and the same arrival order give the
    /// same study, proposal for proposal; another arrival order gives another (the proposals depend on what was
    /// known and what was running when each was made).
    @Test func aSeedReproducesAParallelStudyWhenResultsArriveInTheSameOrder() async throws {
        // Within each window of four, the trials finish last-started first.
        let order = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14]
        let first = try await run(order: order, parallel: 4)
        let second = try await run(order: order, parallel: 4)
        #expect(first.returned == order)
        #expect(second.returned == order)
        #expect(first.configurations.count == 16)
        #expect(first.configurations == second.configurations)
        #expect(Set(first.configurations).count == 16)
        let inOrder = try await run(order: Array(0..<16), parallel: 4)
        #expect(inOrder.returned == Array(0..<16))
        // The initial design does not depend on results; what the model proposes after it does.
        #expect(Array(inOrder.configurations.prefix(4)) == Array(first.configurations.prefix(4)))
        #expect(inOrder.configurations != first.configurations)
    }
}
