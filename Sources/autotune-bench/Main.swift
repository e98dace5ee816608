import Autotune

/// Autotune's benchmarks; each prints a markdown table (docs/benchmarks.md).
///
///     autotune-bench loop [trials ...]      the loop's own overhead per trial
///     autotune-bench optimizers [seeds]     simple regret of random, grid and bayesian on test functions
///     autotune-bench ask-latency            bayesian ask time against the number of observations (d = 6)
///     autotune-bench constrained [seeds]    regret and wasted trials on constrained problems with crash regions
///     autotune-bench pareto [seeds]         hypervolume ratio of the front found on two-objective problems
///     autotune-bench pareto-truth           the true fronts' hypervolumes, for the peers' script
///     autotune-bench generator              the load generator's highest request rate on a trivial server
@main
enum Benchmarks {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "optimizers": try OptimizerBenchmark.run(Array(arguments.dropFirst()))
        case "ask-latency": try OptimizerBenchmark.askLatency(Array(arguments.dropFirst()))
        case "constrained": try ConstrainedBenchmark.run(Array(arguments.dropFirst()))
        case "constrained-minima": print(ConstrainedProblem.all().map { "\($0.minimum)" }.joined(separator: " "))
        case "pareto": try ParetoBenchmark.run(Array(arguments.dropFirst()))
        case "pareto-truth": print(ParetoProblem.all().map { "\($0.trueHypervolume())" }.joined(separator: " "))
        case "generator": try await GeneratorBenchmark.run(Array(arguments.dropFirst()))
        case "loop", nil: try await LoopOverhead.run(Array(arguments.dropFirst()))
        case "workers": try await SharedLoopOverhead.run(Array(arguments.dropFirst()))
        case "blas": print("threads \(BLAS.threads), core \(BLAS.coreName), \(BLAS.configuration)")
        default:
            print("usage: autotune-bench loop|workers|optimizers|constrained|pareto|ask-latency|generator [arguments]")
        }
    }
}
