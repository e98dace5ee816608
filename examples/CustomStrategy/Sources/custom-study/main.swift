import Autotune
import AutotuneRunner
import AutotuneStore
import AutotuneTask
import CoordinateDescent
import Foundation

// Runs the task file given (default: task.yaml) with `coordinate-descent` registered next to the built-in
// strategies, then prints the best trial.
let path = CommandLine.arguments.dropFirst().first ?? "task.yaml"
let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
var registry = StrategyRegistry.standard
registry.register("coordinate-descent") { context, state in CoordinateDescent(context: context, state: state) }

let definition = try TaskFile.load(path: path, workingDirectory: here).0
let database = here.appendingPathComponent(".custom-study/studies.sqlite")
try? FileManager.default.removeItem(at: database.deletingLastPathComponent())
let store = try SQLiteStudyStore(path: database.path)
let study = try await store.createStudy(definition, taskSource: nil)
let runner = try await StudyRunner(
    study: study,
    store: store,
    registry: registry,
    options: StudyRunner.Options(
        trialsDirectory: database.deletingLastPathComponent().appendingPathComponent("trials"),
        workingDirectory: here,
        progress: LineProgress()
    )
)
let outcome = try await runner.run()
let trials = try await store.trials(ofStudy: study.id)
guard let best = outcome.best, let trial = trials.first(where: { $0.number == best.number }) else {
    print("no trial completed")
    exit(4)
}
print(
    "\(definition.strategy.name): \(trials.count) trials, best \(definition.objective.label)=\(best.score) at \(trial.configuration.summary(in: definition.space))"
)
