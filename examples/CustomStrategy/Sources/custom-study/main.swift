import Autotune
import AutotuneRunner
import AutotuneStore
import AutotuneTask
import CoordinateDescent
import Foundation
import Logging

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
guard case .command(let command) = definition.experiment else {
    print("this example runs command experiments")
    exit(2)
}
let runner = try await StudyLoop(
    study: study,
    store: store,
    registry: registry,
    experiment: CommandExperiment(spec: command, defaultWorkingDirectory: here),
    options: StudyLoop.Options(
        trialsDirectory: database.deletingLastPathComponent().appendingPathComponent("trials"),
        progress: LineProgress(),
        logger: Logger(label: "custom-study")
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
