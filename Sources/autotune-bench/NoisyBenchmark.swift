import Autotune
import Foundation

/// A serving-like problem measured with noise: maximise a throughput under an SLO on a p99 latency, with a region
/// that does not start. Every measurement is the truth times (1 + noise): 5% on the throughput, 8% on the p99, as
/// benchmark runs of a real server move. The question is not what the search measured but what it recommends:
/// the true throughput of the recommended configuration (regret against the true constrained optimum) and whether
/// its true p99 meets the SLO.
struct NoisyProblem: Sendable {
    var name: String
    var dimension: Int
    /// The true throughput at a point of the unit cube.
    var throughput: @Sendable ([Double]) -> Double
    /// The true p99 latency there, in ms.
    var p99: @Sendable ([Double]) -> Double
    /// The SLO: p99 at most this.
    var limit: Double
    /// Where the server does not start.
    var crashes: @Sendable ([Double]) -> Bool
    /// The relative noise of a throughput and of a p99 measurement (one standard deviation).
    var throughputNoise = 0.05
    var latencyNoise = 0.08

    var space: SearchSpace {
        try! SearchSpace((0..<dimension).map { Parameter("x\($0 + 1)", .float(lower: 0, upper: 1)) })
    }

    func point(_ configuration: Configuration) -> [Double] {
        (0..<dimension).map { configuration["x\($0 + 1)"]!.numericValue! }
    }

    /// Whether `x` truly meets the SLO and starts.
    func feasible(_ x: [Double]) -> Bool { !crashes(x) && p99(x) <= limit }

    /// The true constrained optimum: the best feasible throughput on a grid, then refined by a pattern search.
    func optimum() -> Double {
        let steps = dimension == 2 ? 400 : 40
        var best: (x: [Double], value: Double)?
        var index = [Int](repeating: 0, count: dimension)
        while true {
            let x = index.map { Double($0) / Double(steps) }
            if feasible(x), throughput(x) > best?.value ?? -.infinity { best = (x, throughput(x)) }
            var position = 0
            while position < dimension {
                index[position] += 1
                if index[position] <= steps { break }
                index[position] = 0
                position += 1
            }
            if position == dimension { break }
        }
        guard var (x, value) = best else { return 0 }
        var radius = 1.0 / Double(steps)
        while radius > 1e-7 {
            var moved = false
            for coordinate in 0..<dimension {
                for direction in [-1.0, 1.0] {
                    var candidate = x
                    candidate[coordinate] = min(max(candidate[coordinate] + direction * radius, 0), 1)
                    if feasible(candidate), throughput(candidate) > value {
                        (x, value) = (candidate, throughput(candidate))
                        moved = true
                    }
                }
            }
            if !moved { radius /= 2 }
        }
        return value
    }

    /// Two batch-size-like knobs: throughput rises with the first and falls off past a point, p99 rises steeply
    /// with it, so the best configuration sits on the SLO's boundary; the second trades a little of each.
    static let boundary = NoisyProblem(
        name: "SLO boundary", dimension: 2,
        throughput: { x in 1000 * (0.3 + 1.2 * x[0] - 0.5 * x[0] * x[0]) * (0.9 + 0.2 * x[1]) },
        p99: { x in 150 + 1600 * pow(x[0], 3) + 250 * x[1] },
        limit: 1000, crashes: { x in x[0] + 0.6 * x[1] > 1.35 })

    /// Three knobs with a decoy: a broad hill away from the SLO (a third of the way up the first knob) and the
    /// true optimum on the boundary, a narrower ridge where the second knob is high and the third low.
    static let decoy = NoisyProblem(
        name: "Decoy", dimension: 3,
        throughput: { x in
            let hill = 700 * exp(-((x[0] - 0.3) * (x[0] - 0.3) + (x[1] - 0.3) * (x[1] - 0.3)) / 0.08)
            let ridge = 1000 * x[0] * exp(-((x[1] - 0.85) * (x[1] - 0.85)) / 0.03) * (1 - 0.5 * x[2])
            return 200 + hill + ridge
        },
        p99: { x in 200 + 1500 * x[0] * x[0] + 300 * x[2] },
        limit: 1200, crashes: { x in x[1] > 0.95 && x[2] > 0.5 })

    static func all() -> [NoisyProblem] { [boundary, decoy] }
}

/// `autotune-bench noisy`: what each method recommends on the noisy problems, judged against the truth.
enum NoisyBenchmark {
    /// A method's recommendations over the seeds.
    struct Outcome {
        var regrets: [Double] = []
        var broke = 0

        /// Counts the recommendation `x` (a point of the unit cube, `nil` for none) against the truth.
        mutating func judge(_ x: [Double]?, on problem: NoisyProblem, optimum: Double) {
            guard let x, problem.feasible(x) else {
                regrets.append(100)
                if x != nil { broke += 1 }
                return
            }
            regrets.append((optimum - problem.throughput(x)) / optimum * 100)
        }
    }

    /// A recommendation that breaks the SLO (or crashes) counts as a regret of 100%: it cannot be deployed.
    static func run(seeds: Int, evaluations: Int) async throws {
        print("| problem | method | true regret @\(evaluations) (median [IQR], % of optimum) | truly broke the SLO |")
        print("| --- | --- | --- | --- |")
        for problem in NoisyProblem.all() {
            let optimum = problem.optimum()
            var measured = Outcome()
            var modelled = Outcome()
            for seed in 0..<seeds {
                let (best, recommended) = try await optimize(problem, seed: UInt64(seed), evaluations: evaluations)
                measured.judge(best, on: problem, optimum: optimum)
                modelled.judge(recommended, on: problem, optimum: optimum)
            }
            for (label, outcome) in [
                ("Autotune bayesian, best measured", measured), ("Autotune bayesian, recommended", modelled),
            ] {
                print(
                    "| \(problem.name) | \(label) | \(OptimizerBenchmark.summary(outcome.regrets)) | \(outcome.broke) of \(seeds) |"
                )
            }
        }
        print()
        print("optimum: " + NoisyProblem.all().map { "\($0.name) \($0.optimum())" }.joined(separator: ", "))
    }

    /// One study: the best measured feasible configuration (what a study's best was) and the one the strategy's
    /// models recommend, as points of the unit cube.
    static func optimize(_ problem: NoisyProblem, seed: UInt64, evaluations: Int) async throws -> (
        best: [Double]?, recommended: [Double]?
    ) {
        let objective = Objective.maximize(
            "tps", constraints: [MetricConstraint(metric: "p99", maximum: problem.limit)])
        let context = StrategyContext(
            space: problem.space, objective: objective, seed: seed,
            options: SimulatedSchedule.environmentOptions(for: "bayesian"))
        var strategy = try await StrategyRegistry.builtIn.make("bayesian", context: context)
        var noise = SeededGenerator(seed: seed &* 7919 &+ 17)
        let (trials, _, _) = try await SimulatedSchedule.run(
            &strategy, seed: seed, evaluations: evaluations, parallel: 1
        ) { trial in
            let x = problem.point(trial.configuration)
            if problem.crashes(x) {
                trial.state = .failed
                trial.error = TrialError(stage: .ready, message: "the server exited during ready")
                return
            }
            let tps = problem.throughput(x) * (1 + problem.throughputNoise * noise.nextNormal())
            let p99 = problem.p99(x) * (1 + problem.latencyNoise * noise.nextNormal())
            trial.metrics = ["tps": tps, "p99": p99]
            trial.score(by: objective)
        }
        let best = trials.filter { $0.state == .completed }.max { $0.score! < $1.score! }
        let recommended = await strategy.recommendation()
        return (best.map { problem.point($0.configuration) }, recommended.map { problem.point($0.configuration) })
    }
}
