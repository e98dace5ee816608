import ArgumentParser
import Autotune

/// Autotune's benchmarks; each prints a markdown table (docs/benchmarks.md).
@main
struct Benchmarks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "autotune-bench",
        abstract: "Autotune's benchmarks: each prints a markdown table (docs/benchmarks.md).",
        subcommands: [
            Loop.self, Workers.self, Optimizers.self, AskLatency.self, Constrained.self, ConstrainedMinima.self,
            DecoyFamilyCommand.self, ParetoDecoyFamilyCommand.self,
            Noisy.self, Pareto.self, TimeToTargetCommand.self, ParetoTruth.self, Generator.self, PrefixCaching.self,
            Blas.self,
        ],
        defaultSubcommand: Loop.self
    )

    /// Parallelism levels written `1,4,8`.
    struct Levels: ExpressibleByArgument {
        var values: [Int]

        init?(argument: String) {
            let values = argument.split(separator: ",").compactMap { Int($0) }
            guard !values.isEmpty, values.allSatisfy({ $0 >= 1 }) else { return nil }
            self.values = values
        }
    }

    /// Names written `random,bayesian`.
    struct Names: ExpressibleByArgument {
        var values: [String]

        init?(argument: String) { values = argument.split(separator: ",").map(String.init) }
    }

    struct Loop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The loop's own overhead per trial.")
        @Argument(help: "Trial counts (default 1000 10000).") var trials: [Int] = []
        func run() async throws { try await LoopOverhead.run(trials) }
    }

    struct Workers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A shared study's cost per trial with 1 and 3 workers over PostgreSQL.")
        @Argument(help: "postgres://user@host/db") var url: String
        @Argument(help: "Trial counts (default 200 1000).") var trials: [Int] = []
        func validate() throws {
            guard url.hasPrefix("postgres") else { throw ValidationError("the first argument is a postgres:// URL") }
        }
        func run() async throws { try await SharedLoopOverhead.run(url: url, counts: trials) }
    }

    struct Optimizers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Simple regret of random, grid and bayesian search on test functions.")
        @Argument(help: "Seeds per function.") var seeds = 10
        @Argument(help: "Only this function.") var function: String?
        @Option(help: "Parallelism levels, e.g. 1,4,8.") var parallel = Levels(argument: "1")!
        @Option(help: "Only these strategies, e.g. random,bayesian.") var strategies: Names?
        @Option(help: "Evaluations per study (at least 10).") var evaluations = 50
        func run() async throws {
            try await OptimizerBenchmark.run(
                seeds: seeds, function: function, parallels: parallel.values, only: strategies?.values,
                evaluations: max(10, evaluations))
        }
    }

    struct AskLatency: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ask-latency", abstract: "Bayesian ask time against the number of observations (d = 6).")
        @Argument(help: "Observation counts (default 50 100 200 300 500).") var sizes: [Int] = []
        @Option(help: "Trials running (asked, not told).") var running = 0
        @Option(help: "Threads spinning meanwhile.") var load = 0
        @Option(help: "1 or 2 objectives.") var objectives = 1
        @Flag(help: "A hard constraint on the second measure instead of a second objective.") var constraint = false
        @Option(help: "Asks timed per size (the median is reported).") var repeats = 15
        func run() async throws {
            try await OptimizerBenchmark.askLatency(
                sizes: sizes, runningCount: running, load: load, objectives: objectives, constrained: constraint,
                repeats: max(1, repeats))
        }
    }

    struct Constrained: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Regret and wasted trials on constrained problems with crash regions.")
        @Argument(help: "Seeds per problem.") var seeds = 10
        @Argument(help: "Only this problem.") var problem: String?
        @Option(help: "Evaluations per study (at least 10).") var evaluations = 50
        func run() async throws {
            try await ConstrainedBenchmark.run(seeds: seeds, only: problem, evaluations: max(10, evaluations))
        }
    }

    struct Noisy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What the search recommends under benchmark noise, judged against the truth.")
        @Argument(help: "Seeds per problem.") var seeds = 10
        @Option(help: "Evaluations per study.") var evaluations = 50
        func run() async throws { try await NoisyBenchmark.run(seeds: seeds, evaluations: max(10, evaluations)) }
    }

    struct DecoyFamilyCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "decoy-family",
            abstract: "Stuck studies on random problems with a decoy optimum far inside an SLO.")
        @Argument(help: "Problem instances.") var instances = 10
        @Argument(help: "Seeds per instance.") var seeds = 3
        @Option(help: "Parallelism levels, e.g. 1,4,8.") var parallel = Levels(argument: "1,4")!
        @Option(help: "Evaluations per study (at least 10).") var evaluations = 50
        @Option(help: "The first instance drawn.") var firstInstance = 0
        func run() async throws {
            try await DecoyFamily.run(
                instances: instances, seeds: seeds, parallels: parallel.values, evaluations: max(10, evaluations),
                firstInstance: firstInstance)
        }
    }

    struct ParetoDecoyFamilyCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pareto-decoy-family",
            abstract: "Studies left on a decoy front, on random two-objective problems with a crash corner.")
        @Argument(help: "Problem instances.") var instances = 20
        @Argument(help: "Seeds per instance.") var seeds = 1
        @Option(help: "Parallelism levels, e.g. 1,4,8.") var parallel = Levels(argument: "1,4,8")!
        @Option(help: "The first instance drawn.") var firstInstance = 0
        @Option(help: "Strategies, e.g. random,bayesian.") var strategies = Names(argument: "random,bayesian")!
        @Flag(help: "Print the instances as JSON lines, for the peers' script.") var json = false
        func run() async throws {
            try await ParetoDecoyFamily.run(
                instances: instances, seeds: seeds, parallels: parallel.values, strategies: strategies.values,
                firstInstance: firstInstance,
                print: json)
        }
    }

    struct ConstrainedMinima: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "constrained-minima", abstract: "The constrained problems' minima, for the peers' script.")
        func run() async throws { print(ConstrainedProblem.all().map { "\($0.minimum)" }.joined(separator: " ")) }
    }

    struct Pareto: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hypervolume ratio of the front found on two-objective problems.")
        @Argument(help: "Seeds per problem.") var seeds = 10
        @Argument(help: "Only this problem.") var problem: String?
        @Option(help: "Parallelism levels, e.g. 1,4.") var parallel = Levels(argument: "1,4")!
        @Option(help: "Strategies, e.g. random,bayesian.") var strategies = Names(argument: "random,bayesian")!
        func run() async throws {
            try await ParetoBenchmark.run(
                seeds: seeds, only: problem, parallels: parallel.values, strategies: strategies.values)
        }
    }

    struct TimeToTargetCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "time-to-target",
            abstract: "How much sooner parallel search reaches the sequential search's final regret, and at what cost.")
        @Argument(help: "Seeds per problem.") var seeds = 10
        @Option(help: "Only these problems, comma-separated.") var problem: String?
        @Option(help: "Parallelism levels, e.g. 4,8 (1 is always run: it sets the target).") var parallel =
            Levels(argument: "4,8")!
        @Option(help: "Evaluations whose sequential regret is the target.") var evaluations = 50
        @Option(help: "Each study runs this many times as many evaluations, to see when late ones arrive.") var extend =
            3
        @Option(help: "The first seed: a choice made on seeds 0-9 is checked on seeds it was not made on.")
        var firstSeed = 0
        func run() async throws {
            try await TimeToTarget.run(
                seeds: seeds, only: problem, parallels: parallel.values, evaluations: max(10, evaluations),
                extend: extend, firstSeed: firstSeed)
        }
    }

    struct ParetoTruth: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pareto-truth", abstract: "The true fronts' hypervolumes, for the peers' script.")
        func run() async throws { print(ParetoProblem.all().map { "\($0.trueHypervolume())" }.joined(separator: " ")) }
    }

    struct PrefixCaching: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prefix-caching",
            abstract: "The simulated engine with prefix caching off and on, on shared and unshared prompts.")
        func run() async throws { try await PrefixCachingBenchmark.run() }
    }

    struct Generator: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The load generator's highest request rate on a trivial server, against a Python client.")
        @Option(help: "A Python with aiohttp, to run the same load with it.") var python: String?
        @Option(help: "The autotune executable (default: beside this one).") var autotune: String?
        func run() async throws { try await GeneratorBenchmark.run(python: python, autotune: autotune) }
    }

    struct Blas: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "OpenBLAS's threads, kernel and build.")
        func run() async throws { print("threads \(BLAS.threads), core \(BLAS.coreName), \(BLAS.configuration)") }
    }
}
