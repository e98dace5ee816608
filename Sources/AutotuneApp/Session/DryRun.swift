public import Autotune
import AutotuneRunner
import AutotuneStore
import Foundation

/// `validate --dry-run`: one trial of a task (its baseline, else the strategy's first configuration) in a
/// scratch folder removed afterwards, and whether it reported every metric the objective and its constraints
/// read, which cannot be known before a command runs.
public struct DryRun: Sendable {
    /// The trial that ran.
    public var trial: Trial
    /// The metrics the objective and its constraints read.
    public var needed: [String]

    /// Runs one trial of `definition` with `settings` (GPUs resolved as for `run`).
    ///
    /// ``AutotuneError/Code/noCompletedTrial`` when the strategy proposes nothing or the trial misses a metric
    /// the objective reads (naming it, the trial's failure and what it did report).
    public static func run(_ definition: StudyDefinition, settings: RunSettings) async throws -> Self {
        let start = ContinuousClock.now
        var single = definition
        single.budget = Budget(maxTrials: 1)
        single.parallel = 1
        single.failFast = nil
        single.confirm = nil
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-dry-run-\(UUID())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let store = try SQLiteStudyStore(path: scratch.appendingPathComponent("dry-run.sqlite").path)
        defer { store.close() }
        let study = try await store.createStudy(single, taskSource: nil)
        var settings = settings
        settings.trialsDirectory = scratch.appendingPathComponent("trials")
        let session = await StudySession(
            study: study, store: store, location: StoreLocation(flag: store.location), settings: settings)
        _ = try await session.run(try await session.makeLoop())
        guard let trial = try await store.trials(ofStudy: study.id).first else {
            throw AutotuneError(.noCompletedTrial, "dry run: the strategy proposed no trial")
        }
        let needed = TrialListing.objectiveMetrics(definition)
        let missing = needed.filter { trial.metrics[$0] == nil }
        guard missing.isEmpty else {
            let reported = trial.metrics.keys.sorted().joined(separator: ", ")
            let failure = trial.error.map { " (\($0.summary))" } ?? ""
            throw AutotuneError(
                .noCompletedTrial,
                "dry run: the trial did not report \(missing.map { "'\($0)'" }.joined(separator: ", "))\(failure); it reported: \(reported.isEmpty ? "nothing" : reported)"
            )
        }
        return Self(trial: trial, needed: needed, seconds: (ContinuousClock.now - start).seconds)
    }

    /// The seconds the whole dry run took, from its start to the trial's end and its cleanup.
    public var seconds: Double

    /// The sentence `validate --dry-run` ends with, with where the time went: each stage of the trial, and the
    /// dry run's own wall time.
    public var text: String {
        let seconds = trial.timings["total"].map { " in " + ProgressFormat.duration($0) } ?? ""
        let order = ["resources", "deploy", "ready", "benchmark", "run"]
        let stages = trial.timings.filter { $0.key != "total" }.sorted {
            (order.firstIndex(of: $0.key) ?? order.count, $0.key) < (
                order.firstIndex(of: $1.key) ?? order.count, $1.key
            )
        }.map { "\($0.key) \(ProgressFormat.duration($0.value))" }
        let breakdown = stages.isEmpty ? "" : " (\(stages.joined(separator: ", ")))"
        return
            "dry run: trial \(trial.state.rawValue)\(seconds)\(breakdown), reporting every metric the objective reads (\(needed.joined(separator: ", ")))\(trial.error.map { "; \($0.summary)" } ?? ""). The dry run took \(ProgressFormat.duration(self.seconds)) in all."
    }
}
