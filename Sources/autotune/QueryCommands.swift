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
                var failures: [String] = []
                for study in studies {
                    let trials = try await database.trials(ofStudy: study.id)
                    // Why trials fail matters more than that they do: the latest failure, with its cause.
                    if let latest = trials.filter({ $0.state == .failed }).max(by: {
                        ($0.finishedAt ?? .distantPast) < ($1.finishedAt ?? .distantPast)
                    }), let error = latest.error {
                        failures.append(
                            "\(study.definition.name): latest failure, trial \(latest.number): \(error.summary)")
                    }
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
                if !failures.isEmpty { print("\n" + failures.joined(separator: "\n")) }
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

    @Flag(name: .long, help: "Show every metric the trial reported, not only those the objective reads.")
    var allMetrics = false

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @OptionGroup var store: StoreOptions

    /// The best trial against the baseline, in `best --format json`.
    struct Gain: Encodable {
        /// The baseline's number (0).
        var baseline: Int
        /// Its score, when it completed.
        var baselineScore: Double?
        /// How much better the best is, as a fraction of the baseline's score (0.25 is 25% better).
        var fraction: Double?
    }

    func run() async throws {
        try await reportingErrors {
            try await store.withStudy(study) { database, stored in
                let trials = try await database.trials(ofStudy: stored.id)
                guard let best = stored.best, let trial = trials.first(where: { $0.number == best.number }) else {
                    throw CLIError(.noCompletedTrial, "study '\(study)' has no completed trial yet")
                }
                let definition = stored.definition
                let command = try commandLine(for: trial, study: stored)
                let baseline = definition.baseline == nil ? nil : trials.first { $0.number == 0 }
                switch format {
                case .json:
                    struct Best: Encodable {
                        var study: String
                        var trial: Trial
                        var command: [String]
                        var gain: Gain?
                    }
                    let gain = baseline.map { baseline in
                        Gain(
                            baseline: 0, baselineScore: baseline.score,
                            fraction: baseline.score.map {
                                gainFraction(best.score, over: $0, objective: definition.objective)
                            })
                    }
                    let report = Best(study: study, trial: trial, command: command, gain: gain)
                    print(String(decoding: try trialEncoder().encode(report), as: UTF8.self))
                case .text:
                    print(
                        "Study '\(study)': best trial \(trial.number) of \(definition.objective.direction.rawValue) \(definition.objective.label)"
                    )
                    print("  score: \(HumanNumber.format(best.score))")
                    if let baseline {
                        print("  " + baselineComparison(baseline, best: best, objective: definition.objective))
                    }
                    print("  configuration:")
                    for parameter in definition.space.parameters {
                        if let value = trial.configuration[parameter.name] {
                            print("    \(parameter.name): \(parameter.display(value))")
                        }
                    }
                    let shown = Set(TrialListing.objectiveMetrics(definition))
                    print(allMetrics ? "  metrics:" : "  metrics (the objective's; --all-metrics for every one):")
                    for (name, value) in trial.metrics.sorted(by: { $0.key < $1.key })
                    where allMetrics || shown.contains(name) {
                        print("    \(name): \(HumanNumber.format(value))")
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
        abstract: "List a study's trials as a table, CSV or JSON.",
        discussion: """
            The table shows each trial's number, state and score, its parameters, the metrics the objective and its \
            constraints read, and why it failed; --all-metrics adds every metric, --columns picks them. CSV and JSON \
            keep full precision and every metric.
            """
    )

    @Argument(help: "The study's name.")
    var study: String

    @Option(name: .long, help: "table, csv or json.")
    var format: OutputFormat = .table

    @Option(name: .long, help: "Only trials in this state (pending, running, completed, failed, pruned).")
    var state: String?

    @Option(name: .long, help: "Columns to show, comma-separated (e.g. number,score,max_num_seqs,ttft_ms_p99).")
    var columns: String?

    @Option(name: .long, help: "Order by score (best first), number, or a parameter or metric; -NAME reverses.")
    var sort: String = "number"

    @Option(name: .long, help: "Only the N best completed trials, best first.")
    var top: Int?

    @Flag(name: .long, help: "Show every metric the trials reported, not only those the objective reads.")
    var allMetrics = false

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case table, csv, json
    }

    @OptionGroup var store: StoreOptions

    func validate() throws {
        if let state, TrialState(rawValue: state) == nil {
            throw ValidationError(
                "--state must be one of: \(TrialState.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let top, top < 1 { throw ValidationError("--top must be at least 1") }
    }

    func run() async throws {
        try await reportingErrors {
            try await store.withStudy(study) { database, stored in
                var trials = try await database.trials(ofStudy: stored.id)
                if let state { trials = trials.filter { $0.state.rawValue == state } }
                let requested = columns.map {
                    $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                }
                let listing = try TrialListing(
                    definition: stored.definition, trials: trials, requested: requested, allMetrics: allMetrics,
                    export: format == .csv)
                trials = try listing.sorted(trials, by: top == nil ? sort : "score")
                if let top { trials = Array(trials.filter { $0.state == .completed }.prefix(top)) }
                switch format {
                case .json:
                    print(String(decoding: try trialEncoder().encode(trials), as: UTF8.self))
                case .csv:
                    print(CSV.render([listing.header] + trials.map { listing.row($0, exact: true) }))
                case .table:
                    print(Table.render([listing.header] + trials.map { listing.row($0, exact: false) }))
                }
            }
        }
    }
}

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a task file without running it, or by running one trial (--dry-run).",
        discussion: """
            Without --dry-run nothing is started. With it, one trial runs (the baseline, else the strategy's first \
            configuration) in a scratch folder that is removed afterwards, and every metric the objective and its \
            constraints read must be among those it reported: what a command reports cannot be known in advance.
            """
    )

    @Argument(help: "The task file.")
    var task: String

    @Flag(name: .long, help: "Run one trial and check that it reports every metric the objective needs.")
    var dryRun = false

    func run() async throws {
        try await reportingErrors {
            let definition = try loadTask(task).definition
            let size = definition.space.cardinality.map { "\($0) configurations" } ?? "continuous"
            let count = definition.space.parameters.count
            print(
                "\(task): valid. Study '\(definition.name)', \(count) parameter\(count == 1 ? "" : "s") (\(size)), \(definition.strategy.name) search, parallel \(definition.parallel)."
            )
            if dryRun { try await dryRunOneTrial(definition) }
        }
    }

    private func dryRunOneTrial(_ definition: StudyDefinition) async throws {
        var single = definition
        single.budget = Budget(maxTrials: 1)
        single.parallel = 1
        single.failFast = nil
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-dry-run-\(UUID())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let store = try SQLiteStudyStore(path: scratch.appendingPathComponent("dry-run.sqlite").path)
        let study = try await store.createStudy(single, taskSource: nil)
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let gpus: [GPU] =
            switch definition.resources.gpus {
            case .declared(let indexes): indexes.map { GPU(index: $0) }
            case .discover: definition.resources.gpusPerTrial == nil ? [] : await NvidiaSMIInventory().discover().gpus
            }
        FileHandle.standardError.write(Data("dry run: one trial…\n".utf8))
        _ = try await StudyLoop(
            study: study, store: store, experiment: makeExperiment(for: single, workingDirectory: cwd),
            options: StudyLoop.Options(
                trialsDirectory: scratch.appendingPathComponent("trials"), logger: cliLogger(), ledger: store,
                gpus: gpus)
        ).run()
        guard let trial = try await store.trials(ofStudy: study.id).first else {
            throw CLIError(.noCompletedTrial, "dry run: the strategy proposed no trial")
        }
        let needed = TrialListing.objectiveMetrics(definition)
        let missing = needed.filter { trial.metrics[$0] == nil }
        let reported = trial.metrics.keys.sorted().joined(separator: ", ")
        guard missing.isEmpty else {
            let failure = trial.error.map { " (\($0.summary))" } ?? ""
            throw CLIError(
                .noCompletedTrial,
                "dry run: the trial did not report \(missing.map { "'\($0)'" }.joined(separator: ", "))\(failure); it reported: \(reported.isEmpty ? "nothing" : reported)"
            )
        }
        let seconds = trial.timings["total"].map { " in " + ProgressFormat.duration($0) } ?? ""
        print(
            "dry run: trial \(trial.state.rawValue)\(seconds), reporting every metric the objective reads (\(needed.joined(separator: ", ")))\(trial.error.map { "; \($0.summary)" } ?? "")."
        )
    }
}

struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a study: its trials, checkpoints and trial directories."
    )

    @Argument(help: "The study's name.")
    var study: String

    @Flag(name: .long, help: "Do not ask first.")
    var yes = false

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reportingErrors {
            try await store.withStudy(study, .existing) { database, stored in
                if stored.status == .running, let runner = stored.runner, runner.isAliveOnThisHost {
                    throw CLIError(.runtime, "study '\(study)' is being run by process \(runner.pid); stop it first")
                }
                let trials = try await database.trials(ofStudy: stored.id).count
                let directory = store.trialsDirectory.appendingPathComponent(study)
                if !yes {
                    FileHandle.standardError.write(
                        Data(
                            "Delete study '\(study)' (\(trials) trial\(trials == 1 ? "" : "s")) and \(directory.path)? [y/N] "
                                .utf8))
                    guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                        throw CLIError(.runtime, "not deleted (give --yes to delete without asking)")
                    }
                }
                try await database.deleteStudy(stored.id)
                try? FileManager.default.removeItem(at: directory)
                print("Deleted study '\(study)' (\(trials) trial\(trials == 1 ? "" : "s")).")
            }
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
