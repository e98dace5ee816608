import ArgumentParser
import Autotune
import AutotuneReport
import AutotuneRunner
import AutotuneStore
import AutotuneTask
import Foundation

struct SpeedupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speedup",
        abstract: "Run the same budget at several parallelism levels and compare wall time and time to target.",
        discussion: """
            Each run is a fresh study (same seed, same budget) in a scratch database; the task file's own database \
            is not touched. Speedup and efficiency are measured against parallel 1, which is run first when the \
            levels leave it out. With --repeat N every level runs N times: the table shows the median wall time and \
            its spread (fastest–slowest). Time to target is when a run's best score first came within 5% of the \
            best any run found: what sequential and parallel search each take to get a good answer.
            """
    )

    @Argument(help: "The task file.")
    var task: String

    @Option(name: .long, help: "Comma-separated parallelism levels.")
    var parallel: String = "1,2,4,8"

    @Option(name: .long, help: "Trials per run (default: the task file's max_trials).")
    var trials: Int?

    @Option(name: .long, help: "Runs per level, for the spread of wall times.")
    var `repeat`: Int = 1

    @Option(name: .long, help: "markdown, csv or json.")
    var format: Format = .markdown

    @Option(name: .long, help: "Also write the speedup and efficiency chart to this HTML file.")
    var report: String?

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case markdown, csv, json
    }

    func validate() throws {
        guard !levels.isEmpty, levels.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--parallel must list levels like 1,2,4,8")
        }
        if let trials, trials < 1 { throw ValidationError("--trials must be at least 1") }
        if `repeat` < 1 { throw ValidationError("--repeat must be at least 1") }
    }

    private var levels: [Int] {
        parallel.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    struct Row: Encodable {
        var parallel: Int
        var runs: Int
        var trials: Int
        var completed: Int
        var wallSeconds: Double
        var wallSecondsFastest: Double
        var wallSecondsSlowest: Double
        var speedup: Double
        var efficiency: Double
        var slotUtilization: Double
        var trialsPerMinute: Double
        var timeToTargetSeconds: Double?
        var bestScore: Double?
        var reference: Bool
    }

    /// One run of one level.
    struct Run {
        var seconds: Double
        var trials: [Trial]
        var best: Double?
    }

    func run() async throws {
        try await reportingErrors {
            let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            var definition = try loadTask(task).definition
            if let trials { definition.budget.maxTrials = trials }
            guard definition.budget.maxTrials != nil || definition.strategy.name == "grid" else {
                throw CLIError(.invalidTask, "\(task): speedup needs a trial budget (budget.max_trials or --trials)")
            }
            definition.budget.maxTime = nil
            definition.failFast = nil
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-speedup-\(UUID())")
            defer { try? FileManager.default.removeItem(at: scratch) }
            let store = try SQLiteStudyStore(path: scratch.appendingPathComponent("speedup.sqlite").path)
            let gpus = definition.resources.gpusPerTrial == nil ? [] : await NvidiaSMIInventory().discover().gpus
            let measured = levels.contains(1) ? levels : [1] + levels
            var runs: [Int: [Run]] = [:]
            for level in measured {
                for repetition in 0..<`repeat` {
                    var levelDefinition = definition
                    levelDefinition.name = "\(definition.name)-p\(level)-\(repetition)"
                    levelDefinition.parallel = level
                    let study = try await store.createStudy(levelDefinition, taskSource: nil)
                    FileHandle.standardError.write(
                        Data("speedup: parallel \(level), run \(repetition + 1) of \(`repeat`)…\n".utf8))
                    let outcome = try await StudyLoop(
                        study: study,
                        store: store,
                        experiment: makeExperiment(for: levelDefinition, workingDirectory: cwd),
                        options: StudyLoop.Options(
                            trialsDirectory: scratch.appendingPathComponent("trials"), logger: cliLogger(),
                            ledger: store, gpus: gpus)
                    ).run()
                    runs[level, default: []].append(
                        Run(
                            seconds: outcome.seconds, trials: try await store.trials(ofStudy: study.id),
                            best: outcome.best?.score))
                }
            }
            let table = rows(runs, levels: measured, objective: definition.objective, reference: !levels.contains(1))
            print(render(table))
            if let report {
                let points = table.map {
                    SpeedupPoint(
                        parallel: $0.parallel, speedup: $0.speedup, efficiency: $0.efficiency, seconds: $0.wallSeconds)
                }
                do {
                    try Data(SpeedupReport.html(task: task, points: points).utf8).write(
                        to: URL(fileURLWithPath: report))
                } catch {
                    throw CLIError(.runtime, "cannot write \(report): \(error.localizedDescription)")
                }
                FileHandle.standardError.write(Data("Wrote \(report)\n".utf8))
            }
        }
    }

    private func rows(_ runs: [Int: [Run]], levels: [Int], objective: Objective, reference: Bool) -> [Row] {
        let all = runs.values.flatMap { $0 }
        let overall = all.compactMap(\.best).reduce(nil as Double?) { best, score in
            best.map { objective.isBetter(score, than: $0) ? score : $0 } ?? score
        }
        let serial = median(runs[1]?.map(\.seconds) ?? [])
        return levels.map { level in
            let levelRuns = runs[level] ?? []
            let walls = levelRuns.map(\.seconds)
            let wall = median(walls)
            let speedup = serial / wall
            let busy = levelRuns.map { run in run.trials.compactMap { $0.timings["total"] }.reduce(0, +) }
            let toTarget = levelRuns.compactMap { timeToTarget($0, target: overall, objective: objective) }
            let count = levelRuns.first?.trials.count ?? 0
            return Row(
                parallel: level,
                runs: levelRuns.count,
                trials: count,
                completed: levelRuns.first?.trials.filter { $0.state == .completed }.count ?? 0,
                wallSeconds: wall,
                wallSecondsFastest: walls.min() ?? 0,
                wallSecondsSlowest: walls.max() ?? 0,
                speedup: speedup,
                efficiency: speedup / Double(level),
                slotUtilization: median(zip(busy, walls).map { $0 / (Double(level) * $1) }),
                trialsPerMinute: Double(count) / wall * 60,
                timeToTargetSeconds: toTarget.count == levelRuns.count ? median(toTarget) : nil,
                bestScore: levelRuns.compactMap(\.best).reduce(nil as Double?) { best, score in
                    best.map { objective.isBetter(score, than: $0) ? score : $0 } ?? score
                },
                reference: reference && level == 1
            )
        }
    }

    /// Seconds from the run's first start until a trial finished within 5% of `target`, or `nil` when none did.
    private func timeToTarget(_ run: Run, target: Double?, objective: Objective) -> Double? {
        guard let target, let start = run.trials.compactMap(\.startedAt).min() else { return nil }
        let margin = abs(target) * 0.05
        let good = run.trials.filter { trial in
            guard let score = trial.score, trial.state == .completed else { return false }
            return objective.direction == .maximize ? score >= target - margin : score <= target + margin
        }
        return good.compactMap(\.finishedAt).min().map { $0.timeIntervalSince(start) }
    }

    private func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
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
                "parallel", "runs", "trials", "completed", "wall_s", "wall_spread_s", "speedup", "efficiency",
                "slot_utilization", "trials_per_min", "time_to_target_s", "best",
            ]
            let body = rows.map { row in
                [
                    String(row.parallel) + (row.reference ? " (reference)" : ""), String(row.runs), String(row.trials),
                    String(row.completed), fixed(row.wallSeconds, 2),
                    "\(fixed(row.wallSecondsFastest, 2))–\(fixed(row.wallSecondsSlowest, 2))", fixed(row.speedup, 2),
                    fixed(row.efficiency, 3), fixed(row.slotUtilization, 3), HumanNumber.format(row.trialsPerMinute),
                    row.timeToTargetSeconds.map { fixed($0, 2) } ?? "-",
                    row.bestScore.map { HumanNumber.format($0) } ?? "-",
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
