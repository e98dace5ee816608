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

    func validate() throws {
        if let pick {
            do { _ = try ParameterExpression(pick) } catch {
                throw ValidationError("--pick: \(error)")
            }
        }
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
                guard var best = stored.best, var trial = trials.first(where: { $0.number == best.number }) else {
                    throw CLIError(.noCompletedTrial, "study '\(study)' has no completed trial yet")
                }
                let definition = stored.definition
                var heading = "best trial"
                if let pick {
                    trial = try picked(pick, from: trials, definition: definition)
                    best = BestTrial(number: trial.number, score: trial.score ?? best.score)
                    heading = "best trial meeting '\(pick)':"
                } else if definition.objective.isMultiObjective {
                    try printFront(best.front, trials: trials, study: stored)
                    return
                }
                // With confirmation runs the best is what held up when re-measured, at its confirmed figure.
                let confirm = definition.confirm
                let ranking = pick == nil ? confirm?.ranking(of: trials, objective: definition.objective) ?? [] : []
                if let confirmed = confirm?.best(of: ranking),
                    let winner = trials.first(where: { $0.number == confirmed.number })
                {
                    (best, trial) = (confirmed, winner)
                    heading = "confirmed best trial"
                }
                let command = try commandLine(for: trial, study: stored)
                let baseline = definition.baseline == nil ? nil : trials.first { $0.number == 0 }
                switch format {
                case .json:
                    struct Best: Encodable {
                        var study: String
                        var trial: Trial
                        var command: [String]
                        var gain: Gain?
                        var confirmed: [ConfirmedResult]?
                        var rankedBy: String?
                    }
                    let gain = baseline.map { baseline in
                        Gain(
                            baseline: 0, baselineScore: baseline.score,
                            fraction: baseline.score.map {
                                gainFraction(best.score, over: $0, objective: definition.objective)
                            })
                    }
                    let report = Best(
                        study: study, trial: trial, command: command, gain: gain,
                        confirmed: ranking.isEmpty ? nil : ranking,
                        rankedBy: ranking.isEmpty ? nil : confirm?.rankBy.rawValue)
                    print(String(decoding: try trialEncoder().encode(report), as: UTF8.self))
                case .text:
                    print(
                        "Study '\(study)': \(heading) \(trial.number) of \(definition.objective.direction.rawValue) \(definition.objective.label)"
                    )
                    if let winner = ranking.first, let confirm {
                        print(
                            "  score: \(HumanNumber.format(best.score)) (the \(confirm.rankBy.rawValue) of \(winner.scores.count) repeat\(winner.scores.count == 1 ? "" : "s"); \(HumanNumber.format(winner.searchScore)) in the search)"
                        )
                    } else {
                        print("  score: \(HumanNumber.format(best.score))")
                    }
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
                    if let confirm, !ranking.isEmpty {
                        print(Self.confirmation(ranking, confirm: confirm, objective: definition.objective))
                    }
                }
            }
        }
    }

    /// The confirmed ranking as a table, and a sentence for each configuration that did not hold up.
    static func confirmation(_ ranking: [ConfirmedResult], confirm: ConfirmationPhase, objective: Objective) -> String {
        var lines = [
            "",
            "Confirmed: the search's best \(ranking.count) re-measured \(confirm.repeats) time\(confirm.repeats == 1 ? "" : "s") each, ranked by the \(confirm.rankBy.rawValue):",
        ]
        var rows = [["rank", "trial", "search rank", "search score", "mean", "spread", "worst", "repeats", "held up"]]
        for result in ranking {
            let done = result.scores.count + result.failures
            var repeats = "\(result.scores.count)/\(result.repeats.count) ok"
            if result.unfinished > 0 { repeats += ", \(result.unfinished) to run" }
            rows.append([
                String(result.rank), String(result.trial), String(result.searchRank),
                HumanNumber.format(result.searchScore), result.mean.map { HumanNumber.format($0) } ?? "–",
                result.spread.map { HumanNumber.format($0) } ?? "–", result.worst.map { HumanNumber.format($0) } ?? "–",
                repeats,
                done == 0 ? "–" : result.heldUp(objective: objective) ? "yes" : "no",
            ])
        }
        lines.append(Table.render(rows).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        if let leader = ranking.first(where: { $0.searchRank == 1 }), leader.rank != 1 {
            let figure =
                (confirm.rankBy == .mean ? leader.mean : leader.worst).map { HumanNumber.format($0) } ?? "no figure"
            let why =
                leader.failures > 0
                ? "\(leader.failures) of its repeats failed" : "its repeats' \(confirm.rankBy.rawValue) was \(figure)"
            lines.append(
                "Trial \(leader.trial) led the search (\(HumanNumber.format(leader.searchScore))) but did not hold up: \(why), rank \(leader.rank) of \(ranking.count); trial \(ranking[0].trial) is the confirmed best."
            )
        }
        for result in ranking where result.searchRank != 1 || result.rank == 1 {
            guard result.scores.count + result.failures > 0, !result.heldUp(objective: objective) else { continue }
            lines.append(
                "Trial \(result.trial) scored \(HumanNumber.format(result.searchScore)) in the search; its repeats \(result.failures > 0 ? "failed \(result.failures) time\(result.failures == 1 ? "" : "s")" : "averaged \(result.mean.map { HumanNumber.format($0) } ?? "–")"): it did not hold up."
            )
        }
        return lines.joined(separator: "\n")
    }

    /// The best completed trial on the score that meets `condition` (names are metrics, then parameters).
    private func picked(_ condition: String, from trials: [Trial], definition: StudyDefinition) throws -> Trial {
        let expression = try ParameterExpression(condition)
        let completed = trials.filter { $0.state == .completed && $0.score != nil && $0.confirms == nil }
        let meeting = completed.filter { trial in
            var values = trial.configuration.values
            for (name, value) in trial.metrics { values[name] = .double(value) }
            return expression.isTrue(values)
        }
        guard let first = meeting.first else {
            let known = Set(completed.flatMap { Array($0.metrics.keys) + Array($0.configuration.values.keys) })
            if let unknown = expression.names.sorted().first(where: { !known.contains($0) }) {
                let hint = suggestion(for: unknown, among: Array(known)).map { " (did you mean '\($0)'?)" } ?? ""
                throw CLIError(
                    .noCompletedTrial, "--pick: no completed trial has a metric or parameter '\(unknown)'\(hint)")
            }
            throw CLIError(
                .noCompletedTrial,
                "no completed trial of '\(study)' meets '\(condition)' (\(completed.count) completed trials checked)")
        }
        return meeting.dropFirst().reduce(first) { best, trial in
            definition.objective.isBetter(trial.score!, than: best.score!) ? trial : best
        }
    }

    /// The Pareto front, best first on the first objective, each trial with its command; the baseline against
    /// it when there is one.
    private func printFront(_ front: [FrontPoint], trials: [Trial], study stored: StoredStudy) throws {
        let definition = stored.definition
        let goals = definition.objective.goals
        let byNumber = Dictionary(uniqueKeysWithValues: trials.map { ($0.number, $0) })
        let front = front.filter { byNumber[$0.number] != nil }
        let members = front.map { byNumber[$0.number]! }
        let commands = try members.map { try commandLine(for: $0, study: stored) }
        let baseline = definition.baseline == nil ? nil : byNumber[0]
        let comparison = baseline.flatMap {
            ParetoComparison(baseline: $0, front: front, objective: definition.objective)
        }
        switch format {
        case .json:
            struct Goal: Encodable {
                var name: String
                var direction: String
            }
            struct Member: Encodable {
                var trial: Trial
                var values: [Double]
                var command: [String]
            }
            struct Front: Encodable {
                var study: String
                var objectives: [Goal]
                var front: [Member]
                var baseline: ParetoComparison?
            }
            let report = Front(
                study: study,
                objectives: goals.map { Goal(name: $0.label, direction: $0.direction.rawValue) },
                front: zip(zip(members, front), commands).map { Member(trial: $0.0, values: $0.1.values, command: $1) },
                baseline: comparison)
            print(String(decoding: try trialEncoder().encode(report), as: UTF8.self))
        case .text:
            let names = goals.map { "\($0.direction == .maximize ? "max" : "min") \($0.label)" }
            print(
                "Study '\(study)': the Pareto front of \(names.joined(separator: ", ")): \(members.count) trial\(members.count == 1 ? "" : "s") no other beats on every objective, best first on \(goals[0].label)"
            )
            let parameters = definition.space.searched.map(\.name)
            let header = ["trial"] + goals.map(\.label) + parameters + ["command"]
            let declared = Dictionary(uniqueKeysWithValues: definition.space.parameters.map { ($0.name, $0) })
            var rows: [[String]] = []
            for (index, trial) in members.enumerated() {
                var row = [String(trial.number)]
                row += front[index].values.map { HumanNumber.format($0) }
                for name in parameters {
                    let value = trial.configuration[name]
                    row.append(value.map { declared[name]?.display($0) ?? $0.text } ?? "")
                }
                row.append(commands[index].map(shellQuoted).joined(separator: " "))
                rows.append(row)
            }
            print(Table.render([header] + rows))
            if let comparison { print(comparison.sentence(goals: goals)) }
            print("Pick one for an SLO: autotune best \(study) --pick \"\(goals.last!.label) <= ...\"")
        }
    }

    /// The trial's argv, rendered exactly as the runner rendered it.
    private func commandLine(for trial: Trial, study: StoredStudy) throws -> [String] {
        try launchCommand(for: trial, study: study, trialsDirectory: store.trialsDirectory)
    }
}

/// A trial's argv, rendered exactly as the runner rendered it (the server's, for a serving study).
func launchCommand(for trial: Trial, study: StoredStudy, trialsDirectory: URL) throws -> [String] {
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

/// The launch commands of the trials a report names: the best and the Pareto front.
func reportCommands(study: StoredStudy, trials: [Trial], trialsDirectory: URL) -> [Int: [String]] {
    let named = Set([study.best?.number].compactMap { $0 } + (study.best?.front.map(\.number) ?? []))
    var commands: [Int: [String]] = [:]
    for trial in trials where named.contains(trial.number) {
        commands[trial.number] = try? launchCommand(for: trial, study: study, trialsDirectory: trialsDirectory)
    }
    return commands
}

/// The baseline against a Pareto front: its values, the gain of the front's best on each objective, and the
/// front trial that dominates it by the most (the largest box between the two, each side relative to the
/// baseline's value).
struct ParetoComparison: Encodable {
    /// The baseline's number (0).
    var trial: Int
    /// Its objective values, when it completed.
    var values: [Double]?
    /// The best front value on each objective as a gain over the baseline (0.25 is 25% better).
    var bestGains: [Double]?
    /// The front trial that dominates the baseline by the most, if one dominates it.
    var dominatedBy: Int?
    /// That trial's gain on each objective.
    var gains: [Double]?

    init?(baseline: Trial, front: [FrontPoint], objective: Objective) {
        trial = baseline.number
        guard baseline.state == .completed, let values = objective.values(baseline.metrics) else {
            values = nil
            return
        }
        self.values = values
        let goals = objective.goals
        func gain(_ value: Double, _ index: Int) -> Double {
            let base = values[index]
            guard base != 0 else { return 0 }
            return goals[index].direction == .maximize ? (value - base) / abs(base) : (base - value) / abs(base)
        }
        bestGains = goals.indices.map { index in front.map { gain($0.values[index], index) }.max() ?? 0 }
        let dominating = front.filter { $0.number != baseline.number && objective.dominates($0.values, values) }
        let volume = { (point: FrontPoint) in goals.indices.map { gain(point.values[$0], $0) }.reduce(1, *) }
        if let winner = dominating.max(by: { volume($0) < volume($1) }) {
            dominatedBy = winner.number
            gains = goals.indices.map { gain(winner.values[$0], $0) }
        }
    }

    /// One line for people.
    func sentence(goals: [Objective.Goal]) -> String {
        guard let values else { return "Baseline (trial \(trial)): no score" }
        let measured = zip(goals, values).map { "\($0.label) \(HumanNumber.format($1))" }.joined(separator: ", ")
        let percent = { (gain: Double) in String(format: "%+.1f%%", gain * 100) }
        guard let dominatedBy, let gains else {
            return "Baseline (trial \(trial)): \(measured); no front trial beats it on every objective."
        }
        // In the metric's own sign: a latency that fell by 40% reads −40%.
        let named = zip(goals, gains).map { goal, gain in
            "\(percent(goal.direction == .maximize ? gain : -gain)) \(goal.label)"
        }.joined(separator: ", ")
        return
            "Baseline (trial \(trial)): \(measured); trial \(dominatedBy) beats it on every objective by the most: \(named)."
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
