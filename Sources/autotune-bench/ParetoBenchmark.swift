import Autotune
import Foundation

/// A two-objective test problem (both minimised), with hard constraints `c_i ≤ 0` where it has some, a
/// reference point and the hypervolume of its true feasible front against it.
struct ParetoProblem {
    var name: String
    var dimension: Int
    /// Each coordinate's range; the search space is these floats.
    var bounds: [ClosedRange<Double>]
    var reference: [Double]
    var objectives: ([Double]) -> [Double]
    var constraints: ([Double]) -> [Double] = { _ in [] }
    /// Where the experiment crashes (nothing measured, a server that does not start), on the problem's own
    /// coordinates.
    var crashes: ([Double]) -> Bool = { _ in false }
    /// The true front's hypervolume: analytic where the front is known in closed form, else from a dense grid.
    var trueHypervolume: () -> Double

    var space: SearchSpace {
        try! SearchSpace(
            bounds.indices.map {
                Parameter("x\($0)", .float(lower: bounds[$0].lowerBound, upper: bounds[$0].upperBound))
            })
    }

    func point(_ configuration: Configuration) -> [Double] {
        bounds.indices.map { configuration["x\($0)"]!.numericValue! }
    }

    static func all() -> [ParetoProblem] {
        [
            ParetoProblem(
                name: "BraninCurrin", dimension: 2, bounds: [0...1, 0...1], reference: [18, 6],
                objectives: { x in
                    let branin = Autotune_bench_branin(15 * x[0] - 5, 15 * x[1])
                    let x0 = x[0]
                    let x1 = max(x[1], 1e-12)
                    let currin =
                        (1 - exp(-1 / (2 * x1))) * (2300 * pow(x0, 3) + 1900 * x0 * x0 + 2092 * x0 + 60)
                        / (100 * pow(x0, 3) + 500 * x0 * x0 + 4 * x0 + 20)
                    return [branin, currin]
                },
                // BoTorch's figure for this reference point; a 6000² grid gives 59.365.
                trueHypervolume: { 59.360_118_748_677_46 }),
            ParetoProblem(
                name: "ZDT1", dimension: 4, bounds: Array(repeating: 0...1, count: 4), reference: [1.1, 1.1],
                objectives: { x in
                    let g = 1 + 9 * x.dropFirst().reduce(0, +) / Double(x.count - 1)
                    return [x[0], g * (1 - (x[0] / g).squareRoot())]
                },
                // The front is f₂ = 1 − √f₁ on [0, 1]: ∫₀¹ (1.1 − 1 + √f) df + 0.1 · 1.1.
                trueHypervolume: { 0.1 + 2.0 / 3 + 0.11 }),
            ParetoProblem(
                name: "DTLZ2", dimension: 4, bounds: Array(repeating: 0...1, count: 4), reference: [1.1, 1.1],
                objectives: { x in
                    let g = x.dropFirst().map { ($0 - 0.5) * ($0 - 0.5) }.reduce(0, +)
                    return [(1 + g) * cos(x[0] * Double.pi / 2), (1 + g) * sin(x[0] * Double.pi / 2)]
                },
                // The front is the quarter circle of radius 1.
                trueHypervolume: { 1.1 * 1.1 - Double.pi / 4 }),
            ParetoProblem(
                name: "SRN (constrained)", dimension: 2, bounds: [-20...20, -20...20], reference: [250, 0],
                objectives: { x in
                    [2 + (x[0] - 2) * (x[0] - 2) + (x[1] - 1) * (x[1] - 1), 9 * x[0] - (x[1] - 1) * (x[1] - 1)]
                },
                constraints: { x in [x[0] * x[0] + x[1] * x[1] - 225, x[0] - 3 * x[1] + 10] },
                // The feasible non-dominated points of a 6000² grid (3000² gives 30,689.8: converged to 1e-4).
                trueHypervolume: { 30_692.37 }),
        ]
    }

    /// Problems of three objectives, which the search scalarises (ParEGO): rows of their own in `pareto`, left
    /// out of `pareto-truth` (the peers' script reads the two-objective problems) and of `time-to-target`.
    static func manyObjectives() -> [ParetoProblem] {
        [
            ParetoProblem(
                name: "DTLZ2 (3 objectives)", dimension: 5, bounds: Array(repeating: 0...1, count: 5),
                reference: [1.1, 1.1, 1.1],
                objectives: { x in
                    let g = x.dropFirst(2).map { ($0 - 0.5) * ($0 - 0.5) }.reduce(0, +)
                    let a = x[0] * Double.pi / 2
                    let b = x[1] * Double.pi / 2
                    return [(1 + g) * cos(a) * cos(b), (1 + g) * cos(a) * sin(b), (1 + g) * sin(a)]
                },
                // The front is the unit sphere's positive octant.
                trueHypervolume: { 1.1 * 1.1 * 1.1 - Double.pi / 6 })
        ]
    }
}

/// The hypervolume (minimisation) of `points` against `reference`: the library's sweep for two objectives; for
/// more, slices along the last objective, each the lower-dimensional volume of the points at or below it.
func hypervolume(_ points: [[Double]], reference: [Double]) -> Double {
    guard reference.count > 2 else { return Pareto.hypervolume(points, reference: reference) }
    let last = reference.count - 1
    let inside = points.filter { zip($0, reference).allSatisfy { $0 < $1 } }.sorted { $0[last] < $1[last] }
    let base = Array(reference.prefix(last))
    var volume = 0.0
    for (index, point) in inside.enumerated() {
        let top = index + 1 < inside.count ? inside[index + 1][last] : reference[last]
        guard top > point[last] else { continue }
        let slice = inside[...index].map { Array($0.prefix(last)) }
        volume += hypervolume(slice, reference: base) * (top - point[last])
    }
    return volume
}

// `branin` is a top-level function of this module; this name reaches it from a closure in a static context.
private func Autotune_bench_branin(_ x1: Double, _ x2: Double) -> Double { branin(x1, x2) }

/// Random and bayesian search on two-objective problems: the hypervolume of the feasible front found, as a
/// ratio to the true front's, after 20 and 50 evaluations; sequentially and with several trials running.
enum ParetoBenchmark {
    /// `pareto [SEEDS] [PROBLEM] [--parallel 1,4] [--strategies random,bayesian]`.
    static func run(seeds: Int, only: String?, parallels: [Int], strategies: [String]) async throws {
        print(
            "| problem | strategy | parallel | HV ratio @20 | HV ratio @50 (median [IQR]) | worst seed @50 | infeasible | strategy time per run |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for problem in ParetoProblem.all() + ParetoProblem.manyObjectives() where only == nil || problem.name == only {
            let truth = problem.trueHypervolume()
            for name in strategies {
                for parallel in name == "random" ? [1] : parallels {
                    var at20: [Double] = []
                    var at50: [Double] = []
                    var infeasible = 0
                    var times: [Double] = []
                    for seed in 0..<seeds {
                        let (trace, seconds, _) = try await optimize(
                            problem, strategy: name, seed: UInt64(seed), evaluations: 50, parallel: parallel)
                        at20.append(
                            hypervolume(trace.prefix(20).compactMap { $0 }, reference: problem.reference) / truth)
                        at50.append(hypervolume(trace.compactMap { $0 }, reference: problem.reference) / truth)
                        infeasible += trace.filter { $0 == nil }.count
                        times.append(seconds)
                    }
                    print(
                        "| \(problem.name) | Autotune \(name) | \(parallel) | \(OptimizerBenchmark.summary(at20)) | \(OptimizerBenchmark.summary(at50)) | \(OptimizerBenchmark.format(at50.min() ?? 0)) | \(ConstrainedBenchmark.percent(infeasible, seeds * 50)) | \(OptimizerBenchmark.format(OptimizerBenchmark.median(times))) s |"
                    )
                }
            }
        }
    }

    /// One study of `evaluations`, `parallel` at a time (random durations, as ``OptimizerBenchmark``); the
    /// objective vector of each evaluation in the order they finished, `nil` for those that broke a constraint;
    /// the strategy's time; when each finished on the simulated clock.
    static func optimize(
        _ problem: ParetoProblem,
        strategy name: String,
        seed: UInt64,
        evaluations: Int,
        parallel: Int
    ) async throws -> ([[Double]?], Double, [Double]) {
        let constraintCount = problem.constraints(problem.bounds.map(\.lowerBound)).count
        let names = problem.reference.indices.map { "f\($0 + 1)" }
        let objective = Objective(
            goals: names.map { .minimize($0) },
            constraints: (0..<constraintCount).map { MetricConstraint(metric: "c\($0)", maximum: 0) })
        let options = SimulatedSchedule.environmentOptions(for: name)
        let context = StrategyContext(space: problem.space, objective: objective, seed: seed, options: options)
        var strategy = try await StrategyRegistry.builtIn.make(name, context: context)
        let (trials, seconds, finishedAt) = try await SimulatedSchedule.run(
            &strategy, seed: seed, evaluations: evaluations, parallel: parallel
        ) { trial in
            let x = problem.point(trial.configuration)
            if problem.crashes(x) {
                trial.crashAtStart()
                return
            }
            let values = problem.objectives(x)
            trial.metrics = Dictionary(uniqueKeysWithValues: zip(names, values))
            for (index, constraint) in problem.constraints(x).enumerated() { trial.metrics["c\(index)"] = constraint }
            trial.score(by: objective)
        }
        let trace = trials.map { trial in trial.state == .completed ? names.map { trial.metrics[$0]! } : nil }
        if ProcessInfo.processInfo.environment["AUTOTUNE_BENCH_TRACE"] != nil {
            printTrace(problem, trials, trace, seed: seed, parallel: parallel)
        }
        return (trace, seconds, finishedAt)
    }

    /// With `AUTOTUNE_BENCH_TRACE` set, each evaluation to standard error in the order it finished: its point and
    /// its objectives (or that it broke a constraint), to see which part of the front a study missed.
    private static func printTrace(
        _ problem: ParetoProblem, _ trials: [Trial], _ trace: [[Double]?], seed: UInt64, parallel: Int
    ) {
        let format = { (values: [Double]) in values.map(OptimizerBenchmark.format).joined(separator: ",") }
        for (trial, values) in zip(trials, trace) {
            let line =
                "TRACE \(problem.name) seed=\(seed) p=\(parallel) #\(trial.number)"
                + " x=\(format(problem.point(trial.configuration))) f=\(values.map(format) ?? "infeasible")\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}
