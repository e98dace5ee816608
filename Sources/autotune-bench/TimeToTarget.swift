import Autotune
import Foundation

/// Time to target: how much sooner, on the clock, a parallel study reaches the answer a sequential one gives.
///
/// The target is the sequential search's median final regret (or, for two objectives, its median hypervolume
/// shortfall) after `evaluations`. Every study runs on the simulated clock (each trial 1 to 3 units, 2 on average,
/// at every parallelism) for `extend` times as many evaluations, and the first moment its best reaches the target
/// is read, with the evaluations it took. Per problem and parallelism the table gives the median of those over
/// the seeds (a seed that never reaches it counts as never; a median of never is "not reached"), the speedup of
/// the median time against parallel 1, the GPU time it costs against parallel 1 (every slot held until the
/// target), the regret at `evaluations` against parallel 1's, and the share of trials wasted (crashed or broke a
/// constraint).
enum TimeToTarget {
    /// One study: after each evaluation in the order they finished, the regret of the best so far, when it
    /// finished, and whether it was wasted.
    struct Run {
        var regrets: [Double]
        var finishedAt: [Double]
        var wasted: [Bool]

        /// The first evaluation (1-based) and time at which the best reached `target`.
        func reach(_ target: Double) -> (evaluations: Double, time: Double) {
            guard let index = regrets.firstIndex(where: { $0 <= target }) else { return (.infinity, .infinity) }
            return (Double(index + 1), finishedAt[index])
        }
    }

    /// A problem of any kind: its name and one study at a seed, parallelism and length.
    struct Problem {
        var kind: String
        var name: String
        var study: (_ seed: UInt64, _ parallel: Int, _ evaluations: Int) async throws -> Run
    }

    /// `time-to-target [SEEDS] [--problem NAME,…] [--parallel 1,4,8] [--evaluations 50] [--extend 3]
    /// [--first-seed 0]`.
    static func run(
        seeds: Int, only: String?, parallels: [Int], evaluations: Int, extend: Int, firstSeed: Int = 0
    ) async throws {
        let levels = ([1] + parallels.filter { $0 != 1 }).sorted()
        print(
            "| kind | problem | parallel | regret@\(evaluations) (median [IQR]) | vs parallel 1 | reached target | evaluations to target | time to target | speedup | GPU time | wasted |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        let chosen = only.map { Set($0.split(separator: ",").map(String.init)) }
        for problem in try problems() where chosen?.contains(problem.name) ?? true {
            var runs: [Int: [Run]] = [:]
            for parallel in levels {
                for seed in firstSeed..<(firstSeed + seeds) {
                    runs[parallel, default: []].append(
                        try await problem.study(UInt64(seed), parallel, evaluations * max(1, extend)))
                }
            }
            let finalRegret = { (parallel: Int) in
                runs[parallel]!.map { $0.regrets[min(evaluations, $0.regrets.count) - 1] }
            }
            let target = OptimizerBenchmark.median(finalRegret(1))
            let sequentialTime = median(runs[1]!.map { $0.reach(target).time })
            let sequentialRegret = OptimizerBenchmark.median(finalRegret(1))
            for parallel in levels {
                let reached = runs[parallel]!.map { $0.reach(target) }
                let time = median(reached.map(\.time))
                let regret = finalRegret(parallel)
                let wasted = runs[parallel]!.flatMap { $0.wasted.prefix(evaluations) }
                let cells = [
                    problem.kind, problem.name, "\(parallel)", OptimizerBenchmark.summary(regret),
                    ratio(OptimizerBenchmark.median(regret), sequentialRegret),
                    "\(reached.filter { $0.time.isFinite }.count) of \(seeds)",
                    never(median(reached.map(\.evaluations))) { String(format: "%.0f", $0) },
                    never(time) { String(format: "%.0f rounds", $0 / 2) },
                    never(time) { String(format: "%.2f×", sequentialTime / $0) },
                    never(time) { String(format: "%.2f×", Double(parallel) * $0 / sequentialTime) },
                    ConstrainedBenchmark.percent(wasted.filter { $0 }.count, wasted.count),
                ]
                print("| \(cells.joined(separator: " | ")) |")
            }
        }
    }

    /// A median in which `.infinity` stands for "never"; infinite when at least half never reached.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .infinity }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    private static func never(_ value: Double, _ format: (Double) -> String) -> String {
        value.isFinite ? format(value) : "not reached"
    }

    private static func ratio(_ value: Double, _ reference: Double) -> String {
        if value == reference { return "1×" }
        guard reference > 0 else { return "—" }
        return String(format: "%.2g×", value / reference)
    }

    /// The single-objective test functions, the constrained problems with crash regions and the two-objective
    /// problems, each a study of Autotune's bayesian search.
    static func problems() throws -> [Problem] {
        let functions = try TestFunction.all().map { function in
            Problem(kind: "single", name: function.name) { seed, parallel, evaluations in
                let (values, _, finishedAt) = try await OptimizerBenchmark.optimize(
                    function, strategy: "bayesian", seed: seed, evaluations: evaluations, parallel: parallel)
                var best = Double.infinity
                return Run(
                    regrets: values.map { value in
                        best = min(best, value)
                        return best - function.minimum
                    }, finishedAt: finishedAt, wasted: values.map { _ in false })
            }
        }
        let constrained = ConstrainedProblem.all().map { problem in
            let worst = ConstrainedBenchmark.worst(problem)
            return Problem(kind: "constrained", name: problem.name) { seed, parallel, evaluations in
                let (trace, finishedAt) = try await ConstrainedBenchmark.optimize(
                    problem, strategy: "bayesian", seed: seed, evaluations: evaluations, parallel: parallel)
                var best = worst
                return Run(
                    regrets: trace.map { evaluation in
                        best = min(best, evaluation.feasible ?? best)
                        return best - problem.minimum
                    }, finishedAt: finishedAt, wasted: trace.map { $0.feasible == nil })
            }
        }
        let pareto = ParetoProblem.all().map { problem in
            let truth = problem.trueHypervolume()
            return Problem(kind: "two objectives", name: problem.name) { seed, parallel, evaluations in
                let (trace, _, finishedAt) = try await ParetoBenchmark.optimize(
                    problem, strategy: "bayesian", seed: seed, evaluations: evaluations, parallel: parallel)
                var front: [[Double]] = []
                return Run(
                    regrets: trace.map { point in
                        if let point { front.append(point) }
                        return 1 - hypervolume(front, reference: problem.reference) / truth
                    }, finishedAt: finishedAt, wasted: trace.map { $0 == nil })
            }
        }
        return functions + constrained + pareto
    }
}
