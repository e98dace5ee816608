import Autotune
import AutotuneRunner
import AutotuneStore
import Foundation

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

    static func run(_ arguments: [String]) async throws {
        let counts = arguments.compactMap { Int($0) }
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
                    let runner = try await StudyRunner(
                        study: study,
                        store: store,
                        experiment: NoOp(),
                        options: StudyRunner.Options(
                            trialsDirectory: scratch.appendingPathComponent("trials"),
                            workingDirectory: scratch
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
