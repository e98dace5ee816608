import Autotune
import Foundation

/// A constrained test problem with a crash region: minimise `objective` where `constraint ≤ 0` (an SLO the trial
/// measures), and nothing is measured at all where `crashes` holds (a configuration that does not start).
struct ConstrainedProblem: Sendable {
    var name: String
    var bounds: [ClosedRange<Double>]
    var objective: @Sendable ([Double]) -> Double
    /// Constraint values, each feasible when ≤ 0.
    var constraints: @Sendable ([Double]) -> [Double]
    /// Where the experiment crashes, on the unit cube's coordinates.
    var crashes: @Sendable ([Double]) -> Bool
    /// The best feasible value outside the crash region (computed on a fine grid, then refined).
    var minimum: Double

    var space: SearchSpace {
        try! SearchSpace(
            bounds.enumerated().map {
                Parameter("x\($0.offset + 1)", .float(lower: $0.element.lowerBound, upper: $0.element.upperBound))
            })
    }

    func point(_ configuration: Configuration) -> [Double] {
        bounds.indices.map { configuration["x\($0 + 1)"]!.numericValue! }
    }

    func unit(_ x: [Double]) -> [Double] {
        zip(x, bounds).map { ($0 - $1.lowerBound) / ($1.upperBound - $1.lowerBound) }
    }

    /// Gardner et al. 2014 (constrained Bayesian optimisation), with a crash corner.
    static let gardner = ConstrainedProblem(
        name: "Gardner", bounds: [0...6, 0...6],
        objective: { x in cos(2 * x[0]) * cos(x[1]) + sin(x[0]) },
        constraints: { x in [cos(x[0]) * cos(x[1]) - sin(x[0]) * sin(x[1]) - 0.5] },
        crashes: { u in u[0] + u[1] > 1.55 }, minimum: 0)
    /// Gramacy et al. 2016 (the augmented Lagrangian toy problem), with a crash strip.
    static let gramacy = ConstrainedProblem(
        name: "Gramacy", bounds: [0...1, 0...1],
        objective: { x in x[0] + x[1] },
        constraints: { x in
            [
                1.5 - x[0] - 2 * x[1] - 0.5 * sin(2 * Double.pi * (x[0] * x[0] - 2 * x[1])),
                x[0] * x[0] + x[1] * x[1] - 1.5,
            ]
        },
        crashes: { u in u[0] < 0.12 }, minimum: 0)
    /// Branin with a disk constraint (Gelbart et al. 2014), with a crash band at the top.
    static let braninDisk = ConstrainedProblem(
        name: "Branin-disk", bounds: [-5...10, 0...15],
        objective: { x in branin(x[0], x[1]) },
        constraints: { x in [(x[0] - 2.5) * (x[0] - 2.5) + (x[1] - 7.5) * (x[1] - 7.5) - 50] },
        crashes: { u in u[1] > 0.85 }, minimum: 0)

    /// A serving-shaped trap built for this benchmark: a broad, easy hill of throughput (the decoy, 70% of the
    /// best) far from the SLO, and a narrow higher peak whose top breaks the SLO, so the best feasible point
    /// sits on the SLO's boundary on the peak's flank; a crash corner (too many sequences for the memory) beside
    /// it. A search that settles on the broad hill ends stuck at a regret of about 0.15 (the best is −0.848).
    static let decoySLO = ConstrainedProblem(
        name: "Decoy-SLO", bounds: [0...1, 0...1],
        objective: { x in
            let decoy = 0.7 * exp(-((x[0] - 0.25) * (x[0] - 0.25) + (x[1] - 0.3) * (x[1] - 0.3)) / 0.05)
            let peak = exp(-((x[0] - 0.78) * (x[0] - 0.78) + (x[1] - 0.62) * (x[1] - 0.62)) / 0.012)
            return -(decoy + peak)
        },
        constraints: { x in [x[0] + 0.6 * x[1] - 1.1] },
        crashes: { u in u[0] > 0.9 && u[1] < 0.35 }, minimum: 0)

    static func all() -> [ConstrainedProblem] {
        [gardner, gramacy, braninDisk, decoySLO].map { problem in
            var problem = problem
            problem.minimum = problem.trueMinimum()
            return problem
        }
    }

    /// The best feasible, non-crashing value: a 1000² grid, then a direct search from each of its 32 best cells.
    ///
    /// The search steps in 64 directions, turned a little at every radius: a fixed lattice of steps (the 24 of a
    /// 5 × 5 pattern) cannot slide along a slanted constraint's boundary, where these optima sit, and stopped
    /// 3.6e-4 short on Decoy-SLO, so studies beat the "minimum".
    func trueMinimum() -> Double {
        precondition(bounds.count == 2)
        var cells: [(value: Double, unit: [Double])] = []
        let steps = 1000
        for i in 0...steps {
            for j in 0...steps {
                let u = [Double(i) / Double(steps), Double(j) / Double(steps)]
                if let value = feasibleValue(unit: u) { cells.append((value, u)) }
            }
        }
        var best = Double.infinity
        for start in cells.sorted(by: { $0.value < $1.value }).prefix(32) {
            var (value, unit) = start
            var radius = 2.0 / Double(steps)
            var turn = 0.0
            var moves = 0
            while radius > 1e-13 {
                var improved = false
                for k in 0..<64 {
                    let angle = (Double(k) + turn) * 2 * Double.pi / 64
                    let u = [
                        min(max(unit[0] + radius * cos(angle), 0), 1), min(max(unit[1] + radius * sin(angle), 0), 1),
                    ]
                    if let candidate = feasibleValue(unit: u), candidate < value {
                        value = candidate
                        unit = u
                        improved = true
                    }
                }
                moves += 1
                // At the smallest radii rounding alone can "improve" a value for ever.
                if !improved || moves >= 200 {
                    moves = 0
                    radius /= 2
                    turn = (turn + 0.618_034).truncatingRemainder(dividingBy: 1)
                }
            }
            best = min(best, value)
        }
        return best
    }

    private func feasibleValue(unit u: [Double]) -> Double? {
        guard !crashes(u) else { return nil }
        let x = zip(u, bounds).map { $1.lowerBound + $0 * ($1.upperBound - $1.lowerBound) }
        guard constraints(x).allSatisfy({ $0 <= 0 }) else { return nil }
        return objective(x)
    }
}

/// Random and bayesian search on constrained problems with crash regions, each evaluation a trial that
/// completes, breaks its SLO (stage `objective`, metrics measured) or crashes (stage `run`, nothing measured):
/// the median regret of the best feasible point after 10, 20, 30 and 50 evaluations (or through a longer run,
/// `--evaluations N`), and the share of trials that crashed or broke a constraint.
enum ConstrainedBenchmark {
    /// `constrained [SEEDS] [PROBLEM] [--evaluations 50]`.
    static func run(seeds: Int, only: String?, evaluations: Int) async throws {
        let checkpoints = OptimizerBenchmark.checkpoints(evaluations)
        print(
            "| problem | strategy | \(OptimizerBenchmark.regretColumns(evaluations)) | crashed | broke the SLO |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for problem in ConstrainedProblem.all() where only == nil || problem.name == only {
            for name in ["random", "bayesian"] {
                var regrets: [[Double]] = Array(repeating: [], count: checkpoints.count)
                var crashed = 0
                var violated = 0
                var total = 0
                for seed in 0..<seeds {
                    let (trace, _) = try await optimize(
                        problem, strategy: name, seed: UInt64(seed), evaluations: evaluations)
                    for (index, checkpoint) in checkpoints.enumerated() {
                        let best = trace.prefix(checkpoint).compactMap(\.feasible).min()
                        regrets[index].append((best ?? worst(problem)) - problem.minimum)
                    }
                    crashed += trace.filter(\.crashed).count
                    violated += trace.filter { !$0.crashed && $0.feasible == nil }.count
                    total += trace.count
                }
                let cells = regrets.map { OptimizerBenchmark.summary($0) }
                print(
                    "| \(problem.name) | Autotune \(name) | \(cells.joined(separator: " | ")) | \(percent(crashed, total)) | \(percent(violated, total)) |"
                )
            }
        }
    }

    /// A regret for "no feasible point yet": the worst feasible value on the grid is a fair stand-in, so the
    /// median stays defined.
    static func worst(_ problem: ConstrainedProblem) -> Double {
        var worst = -Double.infinity
        for i in 0...200 {
            for j in 0...200 {
                let u = [Double(i) / 200, Double(j) / 200]
                let x = zip(u, problem.bounds).map { $1.lowerBound + $0 * ($1.upperBound - $1.lowerBound) }
                if !problem.crashes(u), problem.constraints(x).allSatisfy({ $0 <= 0 }) {
                    worst = max(worst, problem.objective(x))
                }
            }
        }
        return worst
    }

    static func percent(_ part: Int, _ whole: Int) -> String {
        String(format: "%.0f%%", 100 * Double(part) / Double(max(whole, 1)))
    }

    struct Evaluation {
        var feasible: Double?
        var crashed: Bool
    }

    /// One study of `evaluations`, `parallel` at a time on the simulated clock: each evaluation in the order it
    /// finished, and when.
    static func optimize(
        _ problem: ConstrainedProblem, strategy name: String, seed: UInt64, evaluations: Int, parallel: Int = 1
    ) async throws -> (trace: [Evaluation], finishedAt: [Double]) {
        let constraintCount = problem.constraints(problem.bounds.map(\.lowerBound)).count
        let objective = Objective(
            .minimize, terms: [Objective.Term(metric: "f")],
            constraints: (0..<constraintCount).map { MetricConstraint(metric: "c\($0)", maximum: 0) })
        let options = SimulatedSchedule.environmentOptions(for: name)
        let context = StrategyContext(space: problem.space, objective: objective, seed: seed, options: options)
        var strategy = try await StrategyRegistry.builtIn.make(name, context: context)
        let (trials, _, finishedAt) = try await SimulatedSchedule.run(
            &strategy, seed: seed, evaluations: evaluations, parallel: parallel
        ) { trial in
            let x = problem.point(trial.configuration)
            if problem.crashes(problem.unit(x)) {
                trial.crashAtStart()
            } else {
                trial.metrics = ["f": problem.objective(x)]
                for (index, constraint) in problem.constraints(x).enumerated() {
                    trial.metrics["c\(index)"] = constraint
                }
                trial.score(by: objective)
            }
        }
        if ProcessInfo.processInfo.environment["AUTOTUNE_BENCH_TRACE"] != nil {
            printTrace(problem, trials, seed: seed, parallel: parallel)
        }
        let trace = trials.map { trial in
            Evaluation(
                feasible: trial.state == .completed ? trial.metrics["f"] : nil, crashed: trial.error?.stage == .run)
        }
        return (trace, finishedAt)
    }

    /// With `AUTOTUNE_BENCH_TRACE` set, each evaluation to standard error in the order it finished: its unit
    /// point, objective, first constraint and the regret of the best feasible so far (how the stuck studies in
    /// docs/benchmarks.md were read).
    private static func printTrace(_ problem: ConstrainedProblem, _ trials: [Trial], seed: UInt64, parallel: Int) {
        let format = { (value: Double?) in value.map { String(format: "%.3f", $0) } ?? "-" }
        var best = Double.infinity
        for (index, trial) in trials.enumerated() {
            let unit = problem.unit(problem.point(trial.configuration)).map { format($0) }
            let f = trial.metrics["f"]
            if trial.state == .completed, let f { best = min(best, f) }
            let line =
                "TRACE \(problem.name) seed=\(seed) p=\(parallel) #\(index) u=\(unit) f=\(format(f))"
                + " c=\(format(trial.metrics["c0"])) best=\(String(format: "%.3g", best - problem.minimum))\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}
