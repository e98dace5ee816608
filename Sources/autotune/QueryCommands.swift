import ArgumentParser
import Autotune
import AutotuneApp
import AutotuneRunner
import AutotuneTask
import Foundation

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
            let location = store.location
            try await location.withStore(.readOnly, logger: cliLogger()) { database in
                let studies =
                    if let study { [try await location.study(study, in: database)] } else {
                        try await database.studies()
                    }
                if studies.isEmpty {
                    print("No studies in \(location.displayPath).")
                    return
                }
                print(try await StatusView(studies: studies, store: database).text)
            }
        }
    }
}

struct BestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "best",
        abstract: "Show a study's best trial and the command line that reproduces it.",
        discussion: """
            With several objectives, the Pareto front: every feasible trial no other beats on all objectives, best \
            first on the first objective, each with its command. --pick answers an SLO question after the fact: \
            the best trial on the (first) objective that also meets a condition on its metrics or parameters, \
            e.g. --pick "ttft_ms_p99 <= 800".
            """
    )

    @Argument(help: "The study's name.")
    var study: String

    @Option(name: .long, help: "text or json.")
    var format: OutputFormat = .text

    @Flag(name: .long, help: "Show every metric the trial reported, not only those the objective reads.")
    var allMetrics = false

    @Option(
        name: .long,
        help: "The best completed trial that also meets this condition on metrics and parameters (ttft_ms_p99 <= 800)."
    )
    var pick: String?

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @OptionGroup var store: StoreOptions

    func validate() throws {
        if let pick {
            do { _ = try Pick(pick) } catch let error as AutotuneError { throw ValidationError(error.message) }
        }
    }

    func run() async throws {
        try await reportingErrors {
            let location = store.location
            try await location.withStudy(study, logger: cliLogger()) { database, stored in
                let trials = try await database.trials(ofStudy: stored.id)
                if pick == nil, stored.definition.objective.isMultiObjective {
                    guard stored.best != nil else {
                        throw AutotuneError(.noCompletedTrial, "study '\(study)' has no completed trial yet")
                    }
                    let view = try FrontView(study: stored, trials: trials, trialsDirectory: location.trialsDirectory)
                    print(format == .json ? try json(view.json) : view.text)
                    return
                }
                let view = try BestView(
                    study: stored, trials: trials, pick: pick, allMetrics: allMetrics,
                    trialsDirectory: location.trialsDirectory, model: await stored.modelRecommendation())
                print(format == .json ? try json(view.json) : view.text)
            }
        }
    }
}

/// `value` as the JSON the query commands print: sorted keys, dates with milliseconds.
func json(_ value: some Encodable) throws -> String {
    String(decoding: try trialEncoder().encode(value), as: UTF8.self)
}

struct TrialsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trials",
        abstract: "List a study's trials as a table, CSV or JSON.",
        discussion: """
            The table shows each trial's number, state and score, its parameters, the metrics the objective and its \
            constraints read, and why it failed; --all-metrics adds every metric, --columns picks them. On a \
            terminal the table fits its width: headers wrap at underscores, a failure is printed under its trial, \
            and a table that still does not fit is shown one trial per block (-x asks for that). CSV, JSON and JSON \
            lines (jsonl, one trial per line, for pipelines) keep full precision and every metric.
            """
    )

    @Argument(help: "The study's name.")
    var study: String

    @Option(name: .long, help: "table, csv, json or jsonl.")
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

    @Flag(
        name: [.customShort("x"), .long],
        help: "One block per trial, a line per column (as psql's \\x); a table too wide for the terminal is shown so.")
    var expanded = false

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case table, csv, json, jsonl
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
            try await store.location.withStudy(study, logger: cliLogger()) { database, stored in
                var trials = try await database.trials(ofStudy: stored.id)
                if let state { trials = trials.filter { $0.state.rawValue == state } }
                let requested = columns.map {
                    $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                }
                let listing = try TrialListing(
                    definition: stored.definition, trials: trials, requested: requested, allMetrics: allMetrics,
                    export: format == .csv)
                try TrialListing.checkSortKey(
                    sort, definition: stored.definition, trials: trials, columns: listing.columns)
                trials = try listing.sorted(trials, by: top == nil ? sort : "score")
                if let top { trials = Array(trials.filter { $0.state == .completed }.prefix(top)) }
                switch format {
                case .json: print(try json(trials))
                case .jsonl:
                    let encoder = trialEncoder()
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    for trial in trials { print(String(decoding: try encoder.encode(trial), as: UTF8.self)) }
                case .csv: print(CSV.render([listing.header] + trials.map { listing.row($0, exact: true) }))
                case .table:
                    guard let width = terminalWidth() ?? (expanded ? 10_000 : nil) else {
                        // A pipe or a file gets every cell whole, for whatever reads it.
                        print(TextTable.render([listing.header] + trials.map { listing.row($0, exact: false) }))
                        return
                    }
                    print(listing.fitted(trials, layout: FittedTable(width: width, expanded: expanded)))
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
            let definition = try LoadedTask.load(task).definition
            let size = definition.space.cardinality.map { "\($0) configurations" } ?? "continuous"
            let count = definition.space.parameters.count
            print(
                "\(task): valid. Study '\(definition.name)', \(count) parameter\(count == 1 ? "" : "s") (\(size)), \(definition.strategy.name) search, parallel \(definition.parallel)."
            )
            guard dryRun else { return }
            printError("dry run: one trial…")
            print(try await DryRun.run(definition, settings: RunSettings(logger: cliLogger())).text)
        }
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
            let location = store.location
            try await location.withStudy(study, .existing, logger: cliLogger()) { database, stored in
                if stored.status == .running, let runner = stored.runner, runner.isAliveOnThisHost {
                    throw AutotuneError(
                        .studyBusy, "study '\(study)' is being run by process \(runner.pid); stop it first")
                }
                let trials = try await database.trials(ofStudy: stored.id).count
                let directory = location.trialsDirectory.appendingPathComponent(study)
                let counted = "\(trials) trial\(trials == 1 ? "" : "s")"
                if !yes {
                    FileHandle.standardError.write(
                        Data("Delete study '\(study)' (\(counted)) and \(directory.path)? [y/N] ".utf8))
                    guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                        throw AutotuneError(.invalidArgument, "not deleted (give --yes to delete without asking)")
                    }
                }
                try await database.deleteStudy(stored.id)
                try? FileManager.default.removeItem(at: directory)
                print("Deleted study '\(study)' (\(counted)).")
            }
        }
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
            let location = store.location
            print(try await GPUsView(location: location).text)
        }
    }
}

struct CompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two or more studies of the same objective side by side.",
        discussion: """
            For each study: its strategy and parallelism, its trials, its wall time, its best (or its front), the \
            gain over its baseline, and how many trials and how long until its best finished; then the best \
            configurations parameter by parameter. E.g. the same task file run at parallel 1 and 4, or the same \
            server tuned on two machines. --format html writes a page that adds each study's best so far against \
            trials and against wall time on shared charts (with several objectives, each study's front).
            """
    )

    @Argument(help: "The studies' names (two or more).")
    var studies: [String]

    @Option(
        name: .long,
        help: "text, json, or html (a page with the studies' best-so-far lines or fronts on shared charts).")
    var format: Format = .text

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json, html
    }

    @Option(
        name: [.short, .customLong("output")],
        help: "The file to write (default: standard output; for html, STUDY-vs-STUDY.html).")
    var output: String?

    @OptionGroup var store: StoreOptions

    func validate() throws {
        if studies.count < 2 { throw ValidationError("compare needs two or more studies") }
    }

    func run() async throws {
        try await reportingErrors {
            let location = store.location
            try await location.withStore(.readOnly, logger: cliLogger()) { database in
                var stored: [StoredStudy] = []
                for name in studies { stored.append(try await location.study(name, in: database)) }
                let (comparison, charts) = try await StudyComparison.loading(stored, from: database)
                let text: String
                switch format {
                case .text: text = comparison.text + "\n"
                case .json: text = try json(comparison.entries) + "\n"
                case .html: text = comparison.html(charts)
                }
                guard let path = output ?? (format == .html ? studies.joined(separator: "-vs-") + ".html" : nil) else {
                    print(text, terminator: "")
                    return
                }
                try write(text, to: path)
                print("Wrote \(path) (\(studies.count) studies)")
            }
        }
    }
}
