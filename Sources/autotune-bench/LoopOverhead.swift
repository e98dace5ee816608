import Autotune
import AutotuneRunner
import AutotuneStore
import AutotuneStorePostgres
import Foundation
import Logging

/// Measures the experiment loop's own cost per trial: studies of in-process experiments that do nothing,
/// recorded in a real SQLite file, so what is left is asking, scheduling, scoring and the two transactions
/// per trial.
enum LoopOverhead {
    /// An experiment that returns at once.
    struct NoOp: Experiment {
        func run(_ context: TrialContext) async throws -> ExperimentResult {
            ExperimentResult(metrics: ["score": context.trial.configuration["x"]?.numericValue ?? 0])
        }
    }

    static func run(_ counts: [Int]) async throws {
        let trialCounts = counts.isEmpty ? [1_000, 10_000] : counts
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-bench-\(UUID())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let store = try SQLiteStudyStore(path: scratch.appendingPathComponent("bench.sqlite").path)
        let space = try SearchSpace([
            Parameter("x", .float(lower: 0, upper: 1)), Parameter("n", .int(lower: 1, upper: 512, log: true)),
            Parameter("mode", .categorical([.string("a"), .string("b"), .string("c")])),
        ])
        print("| strategy | trials | parallel | wall (s) | per trial (ms) | trials/s |")
        print("| --- | --- | --- | --- | --- | --- |")
        for strategy in ["random", "grid"] {
            for trials in trialCounts {
                for parallel in [1, 8] {
                    let definition = StudyDefinition(
                        name: "\(strategy)-\(trials)-p\(parallel)",
                        space: space,
                        objective: .maximize("score"),
                        strategy: StrategySpec(
                            name: strategy, options: strategy == "grid" ? ["resolution": .number(100)] : [:]),
                        budget: Budget(maxTrials: trials),
                        parallel: parallel,
                        experiment: .command(CommandSpec(command: [Template("true")]))
                    )
                    let study = try await store.createStudy(definition, taskSource: nil)
                    let runner = try await StudyLoop(
                        study: study,
                        store: store,
                        experiment: NoOp(),
                        options: StudyLoop.Options(
                            trialsDirectory: scratch.appendingPathComponent("trials"),
                            logger: Logger(label: "bench")
                        )
                    )
                    let outcome = try await runner.run()
                    let finished = try await store.trials(ofStudy: study.id).filter(\.isFinished).count
                    precondition(finished == trials, "expected \(trials) finished trials, got \(finished)")
                    let perTrial = outcome.seconds / Double(trials) * 1000
                    print(
                        "| \(strategy) | \(trials) | \(parallel) | \(String(format: "%.2f", outcome.seconds)) | \(String(format: "%.3f", perTrial)) | \(String(format: "%.0f", Double(trials) / outcome.seconds)) |"
                    )
                }
            }
        }
    }
}

/// Measures what sharing a study through PostgreSQL costs per trial: workers in this process, each with
/// its own connection pool, run a study of in-process experiments that return at once, so what is left is
/// the claim or the ask under the study's lock, the tell under it, and the heartbeats.
enum SharedLoopOverhead {
    static func run(url: String, counts: [Int]) async throws {
        let trialCounts = counts.isEmpty ? [200, 1_000] : counts
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-bench-\(UUID())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let space = try SearchSpace([
            Parameter("x", .float(lower: 0, upper: 1)), Parameter("n", .int(lower: 1, upper: 512, log: true)),
        ])
        print("| strategy | trials | workers | parallel each | wall (s) | per trial (ms) | trials/s |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for strategy in ["random", "bayesian"] {
            for trials in trialCounts where strategy == "random" || trials <= 200 {
                for workers in [1, 3] {
                    let parallel = 4
                    let definition = StudyDefinition(
                        name: "bench-\(strategy)-\(trials)-w\(workers)-\(UUID().uuidString.prefix(6))",
                        space: space,
                        objective: .maximize("score"),
                        strategy: StrategySpec(name: strategy),
                        budget: Budget(maxTrials: trials),
                        parallel: parallel,
                        experiment: .command(CommandSpec(command: [Template("true")]))
                    )
                    var logger = Logger(label: "worker")
                    if ProcessInfo.processInfo.environment["AUTOTUNE_BENCH_DEBUG"] != nil { logger.logLevel = .debug }
                    let seconds = try await withStores(workers, url: url, logger: logger) { stores in
                        let study = try await stores[0].createStudy(definition, taskSource: nil)
                        let start = ContinuousClock.now
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            for store in stores {
                                let worker = try StudyLoop(
                                    study: study,
                                    sharedStore: store,
                                    experiment: LoopOverhead.NoOp(),
                                    options: StudyLoop.Options(
                                        trialsDirectory: scratch.appendingPathComponent("trials"), logger: logger)
                                )
                                group.addTask {
                                    do {
                                        _ = try await worker.run()
                                    } catch {
                                        FileHandle.standardError.write(Data("worker failed: \(error)\n".utf8))
                                        throw error
                                    }
                                }
                            }
                            try await group.waitForAll()
                        }
                        let seconds = (ContinuousClock.now - start).seconds
                        let finished = try await stores[0].trials(ofStudy: study.id).filter(\.isFinished).count
                        precondition(finished == trials, "expected \(trials) finished trials, got \(finished)")
                        return seconds
                    }
                    print(
                        "| \(strategy) | \(trials) | \(workers) | \(parallel) | \(String(format: "%.2f", seconds)) | \(String(format: "%.2f", seconds / Double(trials) * 1000)) | \(String(format: "%.0f", Double(trials) / seconds)) |"
                    )
                }
            }
        }
    }

    /// `count` stores on `url`, each with its own connections, open for the length of `body`.
    private static func withStores<Result: Sendable>(
        _ count: Int,
        url: String,
        logger: Logger,
        opened: [PostgresStudyStore] = [],
        _ body: ([PostgresStudyStore]) async throws -> Result
    ) async throws -> Result {
        guard opened.count < count else { return try await body(opened) }
        return try await PostgresStudyStore.withStore(url: url, logger: logger) { store in
            try await withStores(count, url: url, logger: logger, opened: opened + [store], body)
        }
    }
}
