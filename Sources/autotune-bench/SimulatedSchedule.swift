import Autotune
import Foundation

/// What the optimiser benchmarks share: the bayesian settings from the environment, and a study run on a
/// simulated clock, as the loop would run it.
enum SimulatedSchedule {
    /// Bayesian options from `AUTOTUNE_BENCH_OPTIONS` (`initial_points=12,pending=fantasies`), for trying other
    /// settings without a rebuild; numbers become numbers.
    static func environmentOptions(for strategy: String) -> [String: JSONValue] {
        guard strategy == "bayesian", let text = ProcessInfo.processInfo.environment["AUTOTUNE_BENCH_OPTIONS"] else {
            return [:]
        }
        var options: [String: JSONValue] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=").map(String.init)
            if parts.count == 2 { options[parts[0]] = Double(parts[1]).map(JSONValue.number) ?? .string(parts[1]) }
        }
        return options
    }

    /// Runs up to `evaluations` trials, `parallel` at a time, each taking 1 to 3 units (seeded), so in parallel
    /// they finish in another order than they started; a freed slot is asked for at once with every running
    /// trial in the history. `finish` sets a trial's outcome. Returns the finished trials in the order they
    /// finished, when each finished on the simulated clock (a trial takes 2 units on average, sequentially too,
    /// so times compare across parallelisms) and the seconds spent in the strategy's asks and tells.
    static func run(
        _ strategy: inout any Strategy,
        seed: UInt64,
        evaluations: Int,
        parallel: Int,
        finish: (inout Trial) throws -> Void
    ) async throws -> (trials: [Trial], seconds: Double, finishedAt: [Double]) {
        var history = StudyHistory()
        var finished: [Trial] = []
        var finishedAt: [Double] = []
        var seconds = 0.0
        let clock = ContinuousClock()
        var durations = SeededGenerator(seed: seed &+ 77)
        var running: [(ends: Double, trial: Trial)] = []
        var now = 0.0
        var started = 0
        while finished.count < evaluations {
            let room = min(parallel - running.count, evaluations - started)
            if room > 0 {
                let asking = clock.now
                let asked = try await strategy.ask(room, history: history)
                seconds += (clock.now - asking).seconds
                for configuration in asked {
                    var trial = Trial(number: started, configuration: configuration)
                    trial.state = .running
                    history.record(trial)
                    running.append((now + 1 + 2 * durations.nextUnit(), trial))
                    started += 1
                }
                if asked.isEmpty && running.isEmpty { break }
            }
            guard let next = running.indices.min(by: { running[$0].ends < running[$1].ends }) else { break }
            let (ends, startedTrial) = running.remove(at: next)
            now = ends
            var trial = startedTrial
            try finish(&trial)
            history.record(trial)
            finished.append(trial)
            finishedAt.append(now)
            let telling = clock.now
            try await strategy.tell(trial)
            seconds += (clock.now - telling).seconds
        }
        return (finished, seconds, finishedAt)
    }
}

extension Trial {
    /// Marks the trial as a configuration that crashed: failed at stage `run` with nothing measured, as a server
    /// that does not start (the crash regions of the constrained and two-objective problems).
    mutating func crashAtStart() {
        state = .failed
        error = TrialError(stage: .run, message: "the server exited (exit status 1) during ready")
    }
}

extension SeededGenerator {
    /// A uniform draw from `range` (the random problem families' parameters).
    mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + nextUnit() * (range.upperBound - range.lowerBound)
    }
}
