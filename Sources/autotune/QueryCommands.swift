import ArgumentParser
import Autotune
import AutotuneRunner
import AutotuneServing
import AutotuneStore
import AutotuneTask
import Foundation
import Logging

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every study, or one study's progress."
    )

    @Argument(help: "A study's name; all studies when left out.")
    var study: String?

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reportingErrors {
            try await store.withStore(.readOnly) { database in
                let studies: [StoredStudy]
                if let study {
                    studies = [try await store.study(study, in: database)]
                } else {
                    studies = try await database.studies()
                }
                if studies.isEmpty {
                    print("No studies in \(store.displayPath).")
                    return
                }
                var rows = [
                    ["study", "status", "strategy", "trials", "completed", "failed", "running", "best", "elapsed"]
                ]
                for study in studies {
                    let trials = try await database.trials(ofStudy: study.id)
                    let count = { (state: TrialState) in String(trials.filter { $0.state == state }.count) }
                    let budget = study.definition.budget.maxTrials.map { "/\($0)" } ?? ""
                    rows.append([
                        study.definition.name, displayStatus(study), study.definition.strategy.name,
                        "\(trials.count)\(budget)", count(.completed), count(.failed),
                        String(trials.filter { !$0.isFinished }.count),
                        study.best.map { "\(ProgressFormat.number($0.score)) (#\($0.number))" } ?? "-",
                        ProgressFormat.duration(study.elapsedSeconds),
                    ])
                }
                print(Table.render(rows))
            }
        }
    }
}

struct BestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "best",
        abstract: "Show a study's best trial and the command line that reproduces it."
    )

    @Argument(help: "The study's name.")
    var study: String

    @Option(name: .long, help: "text or json.")
    var format: OutputFormat = .text

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reportingErrors {
            try await store.withStudy(study) { database, stored in
                guard let best = stored.best,
                    let trial = try await database.trials(ofStudy: stored.id).first(where: { $0.number == best.number })
                else {
                    throw CLIError(.noCompletedTrial, "study '\(study)' has no completed trial yet")
                }
                let definition = stored.definition
                let command = try commandLine(for: trial, study: stored)
                switch format {
                case .json:
                    struct Best: Encodable {
                        var study: String
                        var trial: Trial
                        var command: [String]
                    }
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    encoder.dateEncodingStrategy = .iso8601
                    print(
                        String(
                            decoding: try encoder.encode(Best(study: study, trial: trial, command: command)),
                            as: UTF8.self)
                    )
                case .text:
                    print(
                        "Study '\(study)': best trial \(trial.number) of \(definition.objective.direction.rawValue) \(definition.objective.label)"
                    )
                    print("  score: \(ProgressFormat.number(best.score))")
                    if definition.baseline != nil,
                        let baseline = try await database.trials(ofStudy: stored.id).first(where: { $0.number == 0 })
                    {
                        print("  " + baselineComparison(baseline, best: best, objective: definition.objective))
                    }
                    print("  configuration:")
                    for parameter in definition.space.parameters {
                        if let value = trial.configuration[parameter.name] {
                            print("    \(parameter.name): \(value.text)")
                        }
                    }
                    print("  metrics:")
                    for (name, value) in trial.metrics.sorted(by: { $0.key < $1.key }) {
                        print("    \(name): \(ProgressFormat.number(value))")
                    }
                    print("  command:")
                    print("    " + command.map(shellQuoted).joined(separator: " "))
                }
            }
        }
    }

    /// The trial's argv, rendered exactly as the runner rendered it.
    private func commandLine(for trial: Trial, study: StoredStudy) throws -> [String] {
        let trialsDirectory = store.trialsDirectory
        let context = TrialContext(
            study: study.definition.name,
            trial: trial,
            space: study.definition.space,
            seed: study.definition.seed,
            directory: trialsDirectory.appendingPathComponent(study.definition.name)
                .appendingPathComponent(String(trial.number)),
            logger: cliLogger(),
            gpus: trial.gpus,
            port: trial.port
        )
        return try makeExperiment(for: study.definition, workingDirectory: URL(fileURLWithPath: "."))
            .commandLine(for: context)
    }
}

/// The study's status, saying when a "running" study's runner is gone (killed or crashed): `resume` continues it.
func displayStatus(_ study: StoredStudy) -> String {
    guard study.status == .running, let runner = study.runner, runner.host == RunnerIdentity.current.host,
        !runner.isAliveOnThisHost
    else { return study.status.rawValue }
    return "stopped (runner \(runner.pid) is gone; resume)"
}

/// Quotes an argument for a POSIX shell when it holds anything but safe characters.
func shellQuoted(_ argument: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
    if !argument.isEmpty, argument.allSatisfy({ safe.contains($0) }) { return argument }
    return "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

struct TrialsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trials",
        abstract: "List a study's trials as a table, CSV or JSON."
    )

    @Argument(help: "The study's name.")
    var study: String

    @Option(name: .long, help: "table, csv or json.")
    var format: OutputFormat = .table

    @Option(name: .long, help: "Only trials in this state (pending, running, completed, failed, pruned).")
    var state: String?

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case table, csv, json
    }

    @OptionGroup var store: StoreOptions

    func validate() throws {
        if let state, TrialState(rawValue: state) == nil {
            throw ValidationError(
                "--state must be one of: \(TrialState.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        try await reportingErrors {
            try await store.withStudy(study) { database, stored in
                var trials = try await database.trials(ofStudy: stored.id)
                if let state { trials = trials.filter { $0.state.rawValue == state } }
                let space = stored.definition.space
                switch format {
                case .json:
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    encoder.dateEncodingStrategy = .iso8601
                    print(String(decoding: try encoder.encode(trials), as: UTF8.self))
                case .csv, .table:
                    let metricNames = Set(trials.flatMap(\.metrics.keys)).sorted()
                    let parameterNames = space.parameters.map(\.name)
                    // Where trials ran, when a scheduler placed them (Slurm): the node and its GPUs.
                    let placed = trials.contains { $0.host != nil }
                    var rows = [
                        ["number", "state", "score"] + parameterNames + metricNames + (placed ? ["node", "gpus"] : [])
                            + ["attempt", "error"]
                    ]
                    for trial in trials {
                        let score = trial.score.map { format == .csv ? "\($0)" : ProgressFormat.number($0) } ?? ""
                        let values = parameterNames.map { trial.configuration[$0]?.text ?? "" }
                        let metrics = metricNames.map { name in
                            trial.metrics[name].map { format == .csv ? "\($0)" : ProgressFormat.number($0) } ?? ""
                        }
                        var error = trial.error?.description ?? ""
                        if format == .table, let firstLine = error.split(whereSeparator: \.isNewline).first {
                            error = String(firstLine.prefix(60))
                        }
                        let placement =
                            placed
                            ? [trial.host ?? "", trial.gpus.map { $0.map(String.init).joined(separator: ",") } ?? ""]
                            : []
                        rows.append(
                            [String(trial.number), trial.state.rawValue, score] + values + metrics + placement
                                + [String(trial.attempt), error]
                        )
                    }
                    print(format == .csv ? CSV.render(rows) : Table.render(rows))
                }
            }
        }
    }
}

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a task file without running it."
    )

    @Argument(help: "The task file.")
    var task: String

    func run() async throws {
        try await reportingErrors {
            let definition = try loadTask(task).definition
            let size = definition.space.cardinality.map { "\($0) configurations" } ?? "continuous"
            print(
                "\(task): valid. Study '\(definition.name)', \(definition.space.parameters.count) parameters (\(size)), \(definition.strategy.name) search, parallel \(definition.parallel)."
            )
        }
    }
}

/// Aligned text columns.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

/// RFC 4180 CSV.
enum CSV {
    static func render(_ rows: [[String]]) -> String {
        rows.map { row in
            row.map { cell in
                cell.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline })
                    ? "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : cell
            }.joined(separator: ",")
        }.joined(separator: "\n")
    }
}

struct GPUsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpus",
        abstract: "List the GPUs nvidia-smi finds and the leases trials hold on them."
    )

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reportingErrors {
            let found = await NvidiaSMIInventory().discover()
            if let note = found.note { print("No GPUs: \(note).") }
            let host = RunnerIdentity.current.host
            let leases =
                store.isPostgres || FileManager.default.fileExists(atPath: store.path)
                ? try await store.withStore(.readOnly) { try await $0.leases(host: host) } : []
            var rows = [["gpu", "name", "memory free/total MiB", "util %", "leased by"]]
            for gpu in found.gpus {
                let holder = leases.first { $0.resource == .gpu(gpu.index) }?.holder
                rows.append([
                    String(gpu.index), gpu.name ?? "-",
                    "\(gpu.memoryFreeMiB.map { String(Int($0)) } ?? "?")/\(gpu.memoryTotalMiB.map { String(Int($0)) } ?? "?")",
                    gpu.utilizationPercent.map { String(Int($0)) } ?? "?",
                    holder.map { "\($0.study) trial \($0.trial) (pid \($0.pid))" } ?? "-",
                ])
            }
            if !found.gpus.isEmpty { print(Table.render(rows)) }
            let others = leases.filter { lease in !found.gpus.contains { .gpu($0.index) == lease.resource } }
            for lease in others {
                switch lease.resource {
                case .gpu(let index): print("GPU \(index) leased by \(lease.holder.study) trial \(lease.holder.trial)")
                case .port(let port):
                    print("port \(port) reserved by \(lease.holder.study) trial \(lease.holder.trial)")
                }
            }
        }
    }
}
