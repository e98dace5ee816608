import Autotune
import Foundation
import Synchronization

/// A test function to minimise, over a search space, with its known minimum.
struct TestFunction {
    var name: String
    var space: SearchSpace
    var minimum: Double
    var gridResolution: Int?
    var evaluate: (Configuration) -> Double

    func x(_ configuration: Configuration, _ name: String) -> Double {
        configuration[name]?.numericValue ?? .nan
    }

    static func all() throws -> [TestFunction] {
        let braninSpace = try SearchSpace([
            Parameter("x1", .float(lower: -5, upper: 10)), Parameter("x2", .float(lower: 0, upper: 15)),
        ])
        let hartmannSpace = try SearchSpace((1...6).map { Parameter("x\($0)", .float(lower: 0, upper: 1)) })
        let rosenbrockSpace = try SearchSpace((1...4).map { Parameter("x\($0)", .float(lower: -2.048, upper: 2.048)) })
        let mixedSpace = try SearchSpace([
            Parameter("x", .float(lower: 0, upper: 1)),
            Parameter("batch", .int(lower: 1, upper: 1024, log: true)),
            Parameter("lr", .float(lower: 1e-5, upper: 1e-1, log: true)),
            Parameter("kind", .categorical([.string("a"), .string("b"), .string("c")])),
            Parameter("flag", .bool),
        ])
        return [
            TestFunction(name: "Branin", space: braninSpace, minimum: 0.397887357729738, gridResolution: 8) { c in
                branin(c["x1"]!.numericValue!, c["x2"]!.numericValue!)
            },
            TestFunction(name: "Hartmann-6", space: hartmannSpace, minimum: -3.322368011391339, gridResolution: 2) {
                c in
                let x = (1...6).map { c["x\($0)"]!.numericValue! }
                return hartmann6(x)
            },
            TestFunction(name: "Rosenbrock-4", space: rosenbrockSpace, minimum: 0, gridResolution: 3) { c in
                rosenbrock((1...4).map { c["x\($0)"]!.numericValue! })
            },
            TestFunction(name: "Mixed", space: mixedSpace, minimum: 0, gridResolution: nil) { c in
                mixed(c)
            },
        ]
    }
}

func branin(_ x1: Double, _ x2: Double) -> Double {
    let b = 5.1 / (4 * Double.pi * Double.pi)
    let c = 5 / Double.pi
    let t = x2 - b * x1 * x1 + c * x1 - 6
    let s = 10 * (1 - 1 / (8 * Double.pi))
    return t * t + s * cos(x1) + 10
}

/// Minimum 0 at x = 0.3, batch = 64, lr = 1e-3, kind = b, flag = true.
func mixed(_ c: Configuration) -> Double {
    let x: Double = c["x"]!.numericValue!
    let batch: Double = c["batch"]!.numericValue!
    let lr: Double = c["lr"]!.numericValue!
    let kinds: [String: Double] = ["a": 0.5, "b": 0, "c": 0.3]
    let kind: Double = kinds[c["kind"]!.text]!
    let flag: Double = c["flag"] == .bool(true) ? 0 : 0.2
    let a: Double = (x - 0.3) * (x - 0.3)
    let d1: Double = log2(batch) - 6
    let d2: Double = log10(lr) + 3
    return a + d1 * d1 / 25 + d2 * d2 / 4 + kind + flag
}

func rosenbrock(_ x: [Double]) -> Double {
    var sum = 0.0
    for i in 0..<(x.count - 1) {
        let a = x[i + 1] - x[i] * x[i]
        let b = 1 - x[i]
        sum += 100 * a * a + b * b
    }
    return sum
}

func hartmann6(_ x: [Double]) -> Double {
    let alpha = [1.0, 1.2, 3.0, 3.2]
    let a: [[Double]] = [
        [10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14],
    ]
    let p: [[Double]] = [
        [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886], [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
        [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650], [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
    ]
    var sum = 0.0
    for i in 0..<4 {
        var inner = 0.0
        for j in 0..<6 { inner += a[i][j] * pow(x[j] - p[i][j], 2) }
        sum += alpha[i] * exp(-inner)
    }
    return -sum
}

/// Runs each strategy on each function for several seeds, one evaluation at a time, and reports simple
/// regret (best found − minimum) after 10, 20, 30 and 50 evaluations, and the strategy's own time.
enum OptimizerBenchmark {
    /// Where regret is read in a run of `evaluations`: 10, 20, 30 and 50 in the standard 50; a tenth, a quarter,
    /// a half and the end of a longer one.
    static func checkpoints(_ evaluations: Int) -> [Int] {
        evaluations == 50 ? [10, 20, 30, 50] : [evaluations / 10, evaluations / 4, evaluations / 2, evaluations]
    }

    /// The regret columns of a table of runs of `evaluations`, the last with its spread.
    static func regretColumns(_ evaluations: Int) -> String {
        let reads = checkpoints(evaluations)
        return (reads.dropLast().map { "regret@\($0)" } + ["regret@\(evaluations) (median [IQR])"])
            .joined(separator: " | ")
    }

    /// `optimizers [SEEDS] [FUNCTION] [--parallel 1,4,8] [--strategies random,grid,bayesian] [--evaluations 50]`.
    static func run(seeds: Int, function: String?, parallels: [Int], only: [String]?, evaluations: Int)
        async throws
    {
        let functions = try TestFunction.all().filter { function == nil || $0.name == function }
        let checkpoints = Self.checkpoints(evaluations)
        print("| function | strategy | parallel | \(regretColumns(evaluations)) | strategy time per run |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for function in functions {
            var strategies = ["random", "bayesian"]
            if function.gridResolution != nil { strategies.insert("grid", at: 1) }
            if let only { strategies = strategies.filter(only.contains) }
            for name in strategies {
                for parallel in name == "bayesian" ? parallels : [1] {
                    var regrets: [[Double]] = Array(repeating: [], count: checkpoints.count)
                    var times: [Double] = []
                    for seed in 0..<seeds {
                        let (trace, seconds, _) = try await optimize(
                            function, strategy: name, seed: UInt64(seed), evaluations: evaluations, parallel: parallel)
                        for (index, checkpoint) in checkpoints.enumerated() {
                            regrets[index].append(trace.prefix(checkpoint).min()! - function.minimum)
                        }
                        times.append(seconds)
                    }
                    let cells = regrets.map { summary($0) }
                    print(
                        "| \(function.name) | \(name) | \(parallel) | \(cells.joined(separator: " | ")) | \(format(median(times))) s |"
                    )
                }
            }
        }
    }

    /// Minimises `function` with the named strategy, `parallel` trials at a time; returns every evaluation in
    /// the order it finished, the strategy's time and when each finished on the simulated clock.
    ///
    /// In parallel each trial takes a random time (seeded, 1 to 3 units), so trials finish in an order that is
    /// not the order they started, as on a real cluster; a freed slot is refilled at once, asking with every
    /// running trial in the history.
    static func optimize(
        _ function: TestFunction,
        strategy name: String,
        seed: UInt64,
        evaluations: Int,
        parallel: Int = 1
    ) async throws -> ([Double], Double, [Double]) {
        var options: [String: JSONValue] = [:]
        if name == "grid", let resolution = function.gridResolution {
            options["resolution"] = .number(Double(resolution))
        }
        // AUTOTUNE_BENCH_OPTIONS="initial_points=12,candidates=2048" tries other bayesian settings.
        options.merge(SimulatedSchedule.environmentOptions(for: name)) { $1 }
        let context = StrategyContext(space: function.space, objective: .minimize("f"), seed: seed, options: options)
        var strategy = try await StrategyRegistry.builtIn.make(name, context: context)
        let (trials, seconds, finishedAt) = try await SimulatedSchedule.run(
            &strategy, seed: seed, evaluations: evaluations, parallel: parallel
        ) { trial in
            let value = function.evaluate(trial.configuration)
            trial.state = .completed
            trial.score = value
            trial.metrics = ["f": value]
        }
        let values = trials.map { $0.score! }
        if ProcessInfo.processInfo.environment["AUTOTUNE_BENCH_TRACE"] != nil {
            printTrace(function, trials, seed: seed, parallel: parallel)
        }
        return (values, seconds, finishedAt)
    }

    /// With `AUTOTUNE_BENCH_TRACE` set, each evaluation to standard error in the order it finished: its regret,
    /// the best regret so far, and its distance (the largest coordinate difference in the unit cube) from the best
    /// point before it, which tells refinement from exploration.
    private static func printTrace(_ function: TestFunction, _ trials: [Trial], seed: UInt64, parallel: Int) {
        var best = Double.infinity
        var bestPoint: [Double] = []
        for trial in trials {
            let value = trial.score!
            let point = (try? function.space.unitPoint(of: trial.configuration)) ?? []
            let distance = bestPoint.isEmpty ? 0 : zip(point, bestPoint).map { abs($0 - $1) }.max() ?? 0
            let line =
                "TRACE \(function.name) seed=\(seed) p=\(parallel) #\(trial.number) regret=\(format(value - function.minimum))"
                + " best=\(format(min(best, value) - function.minimum)) distance=\(format(distance))\n"
            FileHandle.standardError.write(Data(line.utf8))
            if value < best {
                best = value
                bestPoint = point
            }
        }
    }

    /// Times one bayesian ask after `n` observations of Hartmann-6, for n in 50…500:
    /// `ask-latency [N…] [--running K] [--load T] [--objectives 2] [--constraint] [--repeats R]` with `K` trials
    /// running (asked and not told), `T` threads spinning meanwhile, as experiments keep a machine's cores busy,
    /// and with two objectives Hartmann-6 against the squared distance from the cube's centre (with
    /// `--constraint`, that distance at most 0.5 as a hard constraint instead). The median is of `R` asks (the
    /// first fits from scratch; spinning threads make single asks noisy), the maximum is the first's.
    static func askLatency(
        sizes: [Int], runningCount: Int, load: Int, objectives: Int, constrained: Bool, repeats: Int
    ) async throws {
        let spinning = Atomic<Bool>(true)
        for _ in 0..<load {
            Thread.detachNewThread {
                var x = 1.0
                while spinning.load(ordering: .relaxed) { x = x * 1.000_000_1 + 1e-9 }
                if x < 0 { print(x) }
            }
        }
        defer { spinning.store(false, ordering: .relaxed) }
        let function = try TestFunction.all()[1]
        print(
            "| observations | objectives | constraints | running | busy threads | ask (median of \(repeats)) | ask (max) |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for n in sizes.isEmpty ? [50, 100, 200, 300, 500] : sizes {
            let constraints = constrained ? [MetricConstraint(metric: "g", maximum: 0.5)] : []
            let objective =
                objectives == 2
                ? Objective(goals: [.minimize("f"), .minimize("g")], constraints: constraints)
                : Objective.minimize("f", constraints: constraints)
            let context = StrategyContext(space: function.space, objective: objective, seed: 1)
            var random = try RandomSearch(context: context)
            var strategy = try BayesianOptimization(context: context)
            var history = StudyHistory()
            for (number, configuration) in try random.ask(n, history: history).enumerated() {
                var trial = Trial(number: number, configuration: configuration)
                trial.state = .completed
                trial.score = function.evaluate(configuration)
                let centre = (1...6).map { configuration["x\($0)"]!.numericValue! - 0.5 }
                trial.metrics = ["f": trial.score!, "g": centre.map { $0 * $0 }.reduce(0, +)]
                history.record(trial)
                try strategy.tell(trial)
            }
            for (offset, configuration) in try random.ask(runningCount, history: history).enumerated() {
                var trial = Trial(number: n + offset, configuration: configuration)
                trial.state = .running
                history.record(trial)
            }
            var times: [Double] = []
            for _ in 0..<repeats {
                var copy = strategy
                let clock = ContinuousClock()
                times.append(try clock.measure { _ = try copy.ask(1, history: history) }.seconds)
                strategy = copy
            }
            let cells = [median(times), times.max()!].map { String(format: "%.1f ms", $0 * 1000) }
            print(
                "| \(n) | \(objectives) | \(constraints.count) | \(runningCount) | \(load) | \(cells.joined(separator: " | ")) |"
            )
        }
    }

    static func median(_ values: [Double]) -> Double { quantile(values, 0.5) }

    static func quantile(_ values: [Double], _ q: Double) -> Double {
        let sorted = values.sorted()
        let position = q * Double(sorted.count - 1)
        let low = Int(position.rounded(.down))
        let high = min(low + 1, sorted.count - 1)
        return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
    }

    static func summary(_ values: [Double]) -> String {
        "\(format(median(values))) [\(format(quantile(values, 0.25)))–\(format(quantile(values, 0.75)))]"
    }

    static func format(_ value: Double) -> String {
        if value == 0 { return "0" }
        if abs(value) < 0.01 || abs(value) >= 1000 { return String(format: "%.2g", value) }
        return String(format: "%.3g", value)
    }
}

extension Duration {
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) * 1e-18
    }
}
