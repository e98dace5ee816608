import ArgumentParser
import Autotune
import AutotuneApp
import AutotuneReport
import Foundation

struct SpeedupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speedup",
        abstract: "Run the same budget at several parallelism levels and compare wall time and time to target.",
        discussion: """
            Each run is a fresh study (same seed, same budget) in a scratch database; the task file's own database \
            is not touched. Speedup and efficiency are measured against parallel 1, which is run first when the \
            levels leave it out. With --repeat N every level runs N times: the table shows the median wall time and \
            its spread (fastest–slowest). Time to target is when a run's best first reached the median final best \
            of the sequential runs, with the trials it took: what parallel search needs to give the same answer. \
            GPUs are resolved as for run: --gpus, else the task file's list, else nvidia-smi.
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

    @Option(name: .long, help: "GPU indexes trials may lease, e.g. 0,1,2,3 (overrides the task file and nvidia-smi).")
    var gpus: String?

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
        _ = try gpuIndexes()
    }

    private var levels: [Int] {
        parallel.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    private func gpuIndexes() throws -> [Int]? {
        guard let gpus else { return nil }
        let indexes = gpus.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !indexes.isEmpty, indexes.allSatisfy({ $0 >= 0 }) else {
            throw ValidationError("--gpus must list GPU indexes like 0,1,2,3")
        }
        return indexes
    }

    func run() async throws {
        try await reportingErrors {
            let measurement = try SpeedupMeasurement(
                definition: try LoadedTask.load(task).definition, levels: levels, repeats: `repeat`, trials: trials)
            let settings = RunSettings(gpus: try gpuIndexes(), logger: cliLogger())
            let table = try await measurement.run(settings: settings) { level, repetition in
                printError("speedup: parallel \(level), run \(repetition + 1) of \(`repeat`)…")
            }
            switch format {
            case .json: print(try json(table.rows))
            case .csv: print(CSV.render(table.cells))
            case .markdown: print(table.markdown)
            }
            for warning in table.warnings { printError("autotune: warning: " + warning) }
            if let report {
                let points = table.rows.map {
                    SpeedupPoint(
                        parallel: $0.parallel, speedup: $0.speedup, efficiency: $0.efficiency, seconds: $0.wallSeconds)
                }
                try write(SpeedupReport.html(task: task, points: points), to: report)
                printError("Wrote \(report)")
            }
            if table.rows.allSatisfy({ $0.completed == 0 }) {
                throw AutotuneError(
                    .noCompletedTrial,
                    "no trial completed at any level: there is no speedup to measure (see the warnings)")
            }
        }
    }
}
