import ArgumentParser
import Autotune
import AutotuneRunner
import AutotuneStore
import AutotuneTask
import Foundation

struct SpeedupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speedup",
        abstract: "Run the same budget at several parallelism levels and compare wall time.",
        discussion: """
            Each level runs a fresh study (same seed, same budget) in a scratch database, so the levels are
            comparable; the task file's own database is not touched. Speedup is relative to the first level.
            """
    )

    @Argument(help: "The task file.")
    var task: String

    @Option(name: .long, help: "Comma-separated parallelism levels.")
    var parallel: String = "1,2,4,8"

    @Option(name: .long, help: "Trials per level (default: the task file's max_trials).")
    var trials: Int?

    @Option(name: .long, help: "markdown, csv or json.")
    var format: Format = .markdown

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case markdown, csv, json
    }

    func validate() throws {
        guard !levels.isEmpty, levels.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--parallel must list levels like 1,2,4,8")
        }
        if let trials, trials < 1 { throw ValidationError("--trials must be at least 1") }
    }

    private var levels: [Int] {
        parallel.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    struct Row: Encodable {
        var parallel: Int
        var trials: Int
        var completed: Int
        var wallSeconds: Double
        var speedup: Double
        var efficiency: Double
        var slotUtilization: Double
        var trialsPerMinute: Double
        var bestScore: Double?
    }

    func run() async throws {
        try await reportingErrors {
            let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            var definition = try loadTask(task).definition
            if let trials { definition.budget.maxTrials = trials }
            guard definition.budget.maxTrials != nil else {
                throw CLIError(.invalidTask, "\(task): speedup needs a trial budget (budget.max_trials or --trials)")
            }
            definition.budget.maxTime = nil
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-speedup-\(UUID())")
            defer { try? FileManager.default.removeItem(at: scratch) }
            let store = try SQLiteStudyStore(path: scratch.appendingPathComponent("speedup.sqlite").path)
            var rows: [Row] = []
            for level in levels {
                var levelDefinition = definition
                levelDefinition.name = "\(definition.name)-p\(level)"
                levelDefinition.parallel = level
                let study = try await store.createStudy(levelDefinition, taskSource: nil)
                FileHandle.standardError.write(Data("speedup: parallel \(level)…\n".utf8))
                let runner = try await StudyLoop(
                    study: study,
                    store: store,
                    experiment: makeExperiment(for: levelDefinition, workingDirectory: cwd),
                    options: StudyLoop.Options(
                        trialsDirectory: scratch.appendingPathComponent("trials"),
                        logger: cliLogger(),
                        ledger: store,
                        gpus: levelDefinition.resources.gpusPerTrial == nil
                            ? [] : await NvidiaSMIInventory().discover().gpus
                    )
                )
                let outcome = try await runner.run()
                let trials = try await store.trials(ofStudy: study.id)
                let busy = trials.compactMap { $0.timings["total"] }.reduce(0, +)
                let baseline = rows.first
                let speedup = baseline.map { $0.wallSeconds / outcome.seconds * Double($0.parallel) } ?? Double(level)
                rows.append(
                    Row(
                        parallel: level,
                        trials: trials.count,
                        completed: trials.filter { $0.state == .completed }.count,
                        wallSeconds: outcome.seconds,
                        speedup: speedup,
                        efficiency: speedup / Double(level),
                        slotUtilization: busy / (Double(level) * outcome.seconds),
                        trialsPerMinute: Double(trials.count) / outcome.seconds * 60,
                        bestScore: outcome.best?.score
                    )
                )
            }
            print(render(rows))
        }
    }

    private func render(_ rows: [Row]) -> String {
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            return String(decoding: (try? encoder.encode(rows)) ?? Data(), as: UTF8.self)
        case .csv, .markdown:
            let header = [
                "parallel", "trials", "completed", "wall_s", "speedup", "efficiency", "slot_utilization",
                "trials_per_min", "best",
            ]
            let body = rows.map { row in
                [
                    String(row.parallel), String(row.trials), String(row.completed), fixed(row.wallSeconds, 2),
                    fixed(row.speedup, 2), fixed(row.efficiency, 3), fixed(row.slotUtilization, 3),
                    fixed(row.trialsPerMinute, 1), row.bestScore.map { ProgressFormat.number($0) } ?? "-",
                ]
            }
            if format == .csv { return CSV.render([header] + body) }
            let lines = [header, header.map { _ in "---" }] + body
            return lines.map { "| " + $0.joined(separator: " | ") + " |" }.joined(separator: "\n")
        }
    }

    private func fixed(_ value: Double, _ digits: Int) -> String {
        String(format: "%.\(digits)f", value)
    }
}
