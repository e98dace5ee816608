public import Autotune
import AutotuneRunner
public import Foundation

/// One study's line in `status` and the dashboard's list.
public struct StudyStatusRow: Sendable, Hashable {
    /// The study's name.
    public var name: String
    /// Its status, saying when a "running" study's runner is gone.
    public var status: String
    /// The strategy's name.
    public var strategy: String
    /// Trials so far, and the budget when there is one.
    public var trials: Int
    /// The trial budget.
    public var budget: Int?
    /// Trials per state.
    public var completed: Int
    /// Trials that failed.
    public var failed: Int
    /// Trials not finished.
    public var running: Int
    /// The recommended trial and its score (the confirmed one when there are confirmation runs).
    public var best: BestTrial?
    /// Whether ``best`` is confirmed by repeats.
    public var bestConfirmed: Bool
    /// Seconds of running time.
    public var elapsedSeconds: Double
    /// When the study was last written.
    public var updatedAt: Date
    /// The latest failure and its cause, when a trial failed.
    public var latestFailure: String?

    /// The row of `study` with `trials`.
    public init(study: StoredStudy, trials: [Trial]) {
        let result = StudyResult(definition: study.definition, trials: trials, best: study.best)
        name = study.definition.name
        status = study.displayStatus
        strategy = study.definition.strategy.name
        self.trials = trials.count
        budget = study.definition.budget.maxTrials
        completed = trials.count { $0.state == .completed }
        failed = trials.count { $0.state == .failed }
        running = trials.count { !$0.isFinished }
        best = result.recommended
        bestConfirmed = result.isConfirmed
        elapsedSeconds = study.elapsedSeconds
        updatedAt = study.updatedAt
        // Why trials fail matters more than that they do: the latest failure, with its cause.
        latestFailure = trials.filter { $0.state == .failed }.max {
            ($0.finishedAt ?? .distantPast) < ($1.finishedAt ?? .distantPast)
        }.flatMap { latest in latest.error.map { "trial \(latest.number): \($0.summary)" } }
    }

    /// The best cell: `4120 (#7)`, `4010 (#7, confirmed)`, or `-`.
    public var bestText: String {
        best.map { "\(HumanNumber.format($0.score)) (#\($0.number)\(bestConfirmed ? ", confirmed" : ""))" } ?? "-"
    }
}

/// `status`: every study of a database, or one.
public struct StatusView: Sendable {
    /// One row per study.
    public var rows: [StudyStatusRow]

    /// Reads the rows of `studies` from `store`.
    public init(studies: [StoredStudy], store: any StudyStore) async throws {
        var rows: [StudyStatusRow] = []
        for study in studies {
            rows.append(StudyStatusRow(study: study, trials: try await store.trials(ofStudy: study.id)))
        }
        self.rows = rows
    }

    /// The table, then each study's latest failure.
    public var text: String {
        var table = [["study", "status", "strategy", "trials", "completed", "failed", "running", "best", "elapsed"]]
        for row in rows {
            table.append([
                row.name, row.status, row.strategy, "\(row.trials)\(row.budget.map { "/\($0)" } ?? "")",
                String(row.completed), String(row.failed), String(row.running), row.bestText,
                ProgressFormat.duration(row.elapsedSeconds),
            ])
        }
        let failures = rows.compactMap { row in row.latestFailure.map { "\(row.name): latest failure, \($0)" } }
        return TextTable.render(table) + (failures.isEmpty ? "" : "\n\n" + failures.joined(separator: "\n"))
    }
}

extension StoredStudy {
    /// The study's status, saying when a "running" study's runner is gone (killed or crashed): `resume`
    /// continues it.
    public var displayStatus: String {
        guard status == .running, let runner, runner.host == RunnerIdentity.current.host, !runner.isAliveOnThisHost
        else { return status.rawValue }
        return "stopped (runner \(runner.pid) is gone; resume)"
    }
}

/// `best` of a study of one objective: the recommended trial with its configuration, metrics, command, the gain
/// over the baseline and the confirmation table.
public struct BestView: Sendable {
    /// The study.
    public var study: StoredStudy
    /// What the study found.
    public var result: StudyResult
    /// The trial shown.
    public var trial: Trial
    /// Its score as shown (the confirmed figure when confirmed).
    public var score: Double
    /// What the trial is: `best trial`, `confirmed best trial`, `best trial meeting '…':`.
    public var heading: String
    /// Its launch command.
    public var command: [String]
    /// Whether every metric is shown, not only the objective's.
    public var allMetrics: Bool

    /// The view of `study`'s recommended trial, or of the best trial meeting `pick` when given.
    ///
    /// ``AutotuneError/Code/noCompletedTrial`` when no trial completed, or none meets `pick` (saying which came
    /// closest); ``AutotuneError/Code/invalidArgument`` when `pick` names no metric or parameter.
    public init(
        study: StoredStudy, trials: [Trial], pick: String? = nil, allMetrics: Bool = false, trialsDirectory: URL,
        model: StrategyRecommendation? = nil
    ) throws {
        let result = StudyResult(definition: study.definition, trials: trials, best: study.best, model: model)
        guard let recommended = result.recommended,
            var trial = trials.first(where: { $0.number == recommended.number })
        else {
            throw AutotuneError(.noCompletedTrial, "study '\(study.definition.name)' has no completed trial yet")
        }
        var score = recommended.score
        var heading =
            result.isConfirmed ? "confirmed best trial" : result.model != nil ? "recommended trial" : "best trial"
        if let pick {
            trial = try Pick(pick).best(of: trials, definition: study.definition)
            score = trial.score ?? score
            heading = "best trial meeting '\(pick)':"
        }
        self.study = study
        self.result = result
        self.trial = trial
        self.score = score
        self.heading = heading
        self.allMetrics = allMetrics
        self.isPicked = pick != nil
        command = try study.definition.launchCommand(for: trial, trialsDirectory: trialsDirectory)
    }

    private let isPicked: Bool

    /// The confirmation ranking, unless a pick chose the trial.
    public var confirmation: [ConfirmedResult] { isPicked ? [] : result.confirmation }

    /// What `best --format json` prints.
    public struct JSON: Encodable {
        /// The study's name.
        public var study: String
        /// The trial.
        public var trial: Trial
        /// Its launch command.
        public var command: [String]
        /// The gain over the baseline.
        public var gain: StudyResult.Gain?
        /// The confirmation ranking.
        public var confirmed: [ConfirmedResult]?
        /// What ranked it.
        public var rankedBy: String?
        /// How sure the tool is that it meets each SLO.
        public var slos: [StudyResult.Assurance]?
    }

    /// The JSON value.
    public var json: JSON {
        let ranking = confirmation
        return JSON(
            study: study.definition.name, trial: trial, command: command, gain: isPicked ? nil : result.gain,
            confirmed: ranking.isEmpty ? nil : ranking,
            rankedBy: ranking.isEmpty ? nil : study.definition.confirm?.rankBy.rawValue,
            slos: isPicked || result.assurance.isEmpty ? nil : result.assurance)
    }

    /// The text `best` prints.
    public var text: String {
        let definition = study.definition
        var lines = [
            "Study '\(definition.name)': \(heading) \(trial.number) of \(definition.objective.direction.rawValue) \(definition.objective.label)"
        ]
        if let winner = confirmation.first, let confirm = definition.confirm {
            let figure = confirm.rankBy == .worst ? "worst" : "mean"
            let spread = winner.spread.map { ", spread \(HumanNumber.format($0))" } ?? ""
            lines.append(
                "  score: \(HumanNumber.format(score)) (the \(figure) of \(winner.scores.count) repeat\(winner.scores.count == 1 ? "" : "s")\(spread); \(HumanNumber.format(winner.searchScore)) in the search)"
            )
        } else {
            lines.append("  score: \(HumanNumber.format(score))")
        }
        if !isPicked, result.model != nil, let best = result.searchBest, best.number != trial.number {
            lines.append(
                "  why this one: the models expect it best among the trials they are at least 90% sure meet every SLO; the best measurement, trial \(best.number) at \(HumanNumber.format(best.score)), is likelier to have drawn well or to break an SLO"
            )
        }
        if !isPicked, let gain = result.gain { lines.append("  " + gain.sentence) }
        if !isPicked, !result.assurance.isEmpty {
            lines.append("  SLOs:")
            for assurance in result.assurance { lines.append("    " + assurance.sentence) }
        }
        lines.append("  configuration:")
        for parameter in definition.space.parameters {
            if let value = trial.configuration[parameter.name] {
                lines.append("    \(parameter.name): \(parameter.display(value))")
            }
        }
        let shown = Set(TrialListing.objectiveMetrics(definition))
        lines.append(allMetrics ? "  metrics:" : "  metrics (the objective's; --all-metrics for every one):")
        for (name, value) in trial.metrics.sorted(by: { $0.key < $1.key }) where allMetrics || shown.contains(name) {
            lines.append("    \(name): \(HumanNumber.format(value))")
        }
        lines.append("  command:")
        lines.append("    " + ShellWords.join(command))
        if let confirm = definition.confirm, !confirmation.isEmpty {
            lines.append(
                ConfirmationTable(ranking: confirmation, confirm: confirm, objective: definition.objective).text)
        }
        return lines.joined(separator: "\n")
    }
}

extension StudyResult.Gain {
    /// `Baseline (trial 0): 4120 (mean of 4); the best is 12.3% better (90% interval 8.1% to 16.5%).`, the gain
    /// said to be within the noise when its interval holds 0, or from one measurement each when nothing tells the
    /// noise.
    public var sentence: String {
        guard let baselineScore else { return "Baseline (trial \(baseline)): no score" }
        let runs = baselineRuns > 1 ? " (mean of \(baselineRuns))" : ""
        guard let fraction else { return "Baseline (trial \(baseline)): \(HumanNumber.format(baselineScore))\(runs)" }
        let percent = { (value: Double) in String(format: "%.1f%%", value * 100) }
        let head = "Baseline (trial \(baseline)): \(HumanNumber.format(baselineScore))\(runs); the best is"
        guard let low, let high else {
            return
                "\(head) \(percent(fraction)) better, from one measurement of each: re-measure both (confirm: {top: 3, repeats: 3}) to know it is more than noise."
        }
        let interval = "90% interval \(percent(low)) to \(percent(high))"
        if withinNoise { return "\(head) \(percent(fraction)) better, within the noise (\(interval))." }
        return "\(head) \(percent(fraction)) better (\(interval))."
    }
}

extension StudyResult.Assurance {
    /// `ttft_ms_p99 <= 3000: mean 2710 over 3 runs, 9.7% inside; 96% sure it holds`.
    public var sentence: String {
        let side = margin >= 0 ? "inside" : "OUTSIDE"
        let runs = "\(runs) run\(runs == 1 ? "" : "s")"
        let head =
            "\(constraint): mean \(HumanNumber.format(mean)) over \(runs), \(String(format: "%.1f", abs(margin) * 100))% \(side)"
        guard let probability else { return "\(head); one measurement: confirm it to know how sure that is" }
        return "\(head); \(String(format: "%.0f", probability * 100))% sure it holds"
    }
}

/// The confirmed ranking as a table, and a sentence for each configuration that did not hold up.
public struct ConfirmationTable: Sendable {
    /// The ranking, best first.
    public var ranking: [ConfirmedResult]
    /// The phase that produced it.
    public var confirm: ConfirmationPhase
    /// The study's objective.
    public var objective: Objective

    /// Creates the table.
    public init(ranking: [ConfirmedResult], confirm: ConfirmationPhase, objective: Objective) {
        self.ranking = ranking
        self.confirm = confirm
        self.objective = objective
    }

    /// The text.
    public var text: String {
        let rankedBy = confirm.rankBy == .lcb ? "pessimistic 95% bound" : confirm.rankBy.rawValue
        var lines = [
            "",
            "Confirmed: the search's best \(ranking.count) re-measured \(confirm.repeats) time\(confirm.repeats == 1 ? "" : "s") each, ranked by the \(rankedBy):",
        ]
        var rows = [
            [
                "rank", "trial", "search rank", "search score", "mean", "spread", "worst", "95% bound", "repeats",
                "held up",
            ]
        ]
        for result in ranking {
            let done = result.scores.count + result.failures
            var repeats = "\(result.scores.count)/\(result.repeats.count) ok"
            if result.unfinished > 0 { repeats += ", \(result.unfinished) to run" }
            rows.append([
                String(result.rank), String(result.trial), String(result.searchRank),
                HumanNumber.format(result.searchScore), result.mean.map { HumanNumber.format($0) } ?? "–",
                result.spread.map { HumanNumber.format($0) } ?? "–", result.worst.map { HumanNumber.format($0) } ?? "–",
                result.bound.map { HumanNumber.format($0) } ?? "–", repeats,
                done == 0 ? "–" : result.heldUp(objective: objective) ? "yes" : "no",
            ])
        }
        lines.append(TextTable.indent(TextTable.render(rows)))
        if let noise = ranking.first?.noise {
            lines.append(
                "The noise of one measurement, pooled over the repeats: \(HumanNumber.format(noise)). Held up: the search score is above the repeats' mean by no more than that noise allows (95%)."
            )
        }
        if let leader = ranking.first(where: { $0.searchRank == 1 }), leader.rank != 1 {
            let value: Double? =
                switch confirm.rankBy {
                case .mean: leader.mean
                case .worst: leader.worst
                case .lcb: leader.bound
                }
            let figure = value.map { HumanNumber.format($0) } ?? "no figure"
            let why =
                leader.failures > 0
                ? "\(leader.failures) of its repeats failed" : "its repeats' \(rankedBy) was \(figure)"
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
}

/// `best --pick CONDITION`: the best completed trial whose metrics and parameters meet a condition.
public struct Pick: Sendable {
    /// The condition as written.
    public var condition: String
    private let expression: ParameterExpression

    /// Parses `condition`; ``AutotuneError/Code/invalidArgument`` when it is not an expression.
    public init(_ condition: String) throws {
        self.condition = condition
        do {
            expression = try ParameterExpression(condition)
        } catch {
            throw AutotuneError(.invalidArgument, "--pick: \(error)", underlying: error)
        }
    }

    /// The best completed search trial meeting the condition (names are metrics, then parameters); when none
    /// does, the error names the trial that came closest and by how much.
    public func best(of trials: [Trial], definition: StudyDefinition) throws -> Trial {
        let completed = trials.filter { $0.state == .completed && $0.score != nil && $0.confirms == nil }
        let meeting = completed.filter { expression.isTrue(values(of: $0)) }
        if let first = meeting.first {
            return meeting.dropFirst().reduce(first) { best, trial in
                definition.objective.isBetter(trial.score!, than: best.score!) ? trial : best
            }
        }
        let known = Set(completed.flatMap { Array($0.metrics.keys) + Array($0.configuration.values.keys) })
        if let unknown = expression.names.sorted().first(where: { !known.contains($0) }) {
            throw AutotuneError(
                .invalidArgument,
                "--pick: no completed trial has a metric or parameter '\(unknown)'\(Suggestion.hint(for: unknown, among: Array(known)))"
            )
        }
        var message =
            "no completed trial of '\(definition.name)' meets '\(condition)' (\(completed.count) completed trials checked)"
        if let closest = closest(among: completed) { message += "; the closest: \(closest)" }
        throw AutotuneError(.noCompletedTrial, message)
    }

    private func values(of trial: Trial) -> [String: ParameterValue] {
        var values = trial.configuration.values
        for (name, value) in trial.metrics { values[name] = .double(value) }
        return values
    }

    /// The trial that misses the condition by the least, with the figures it missed by, when the condition is
    /// comparisons joined by `and` (or one comparison).
    private func closest(among trials: [Trial]) -> String? {
        let bounds = expression.comparisons
        guard !bounds.isEmpty else { return nil }
        var best: (shortfall: Double, trial: Trial, misses: [String])?
        for trial in trials {
            let values = values(of: trial)
            var shortfall = 0.0
            var misses: [String] = []
            for bound in bounds {
                guard let value = values[bound.name]?.numericValue else {
                    shortfall = .infinity
                    break
                }
                let miss = bound.miss(value)
                guard miss > 0 else { continue }
                // Relative to the limit, so misses on metrics of different units add up fairly.
                shortfall += miss / max(abs(bound.limit), 1e-9)
                misses.append(
                    "\(bound.name) = \(HumanNumber.format(value)), \(HumanNumber.format(miss)) past \(HumanNumber.format(bound.limit))"
                )
            }
            guard shortfall.isFinite, shortfall > 0 else { continue }
            if shortfall < best?.shortfall ?? .infinity { best = (shortfall, trial, misses) }
        }
        guard let best else { return nil }
        let score = best.trial.score.map { ", score \(HumanNumber.format($0))" } ?? ""
        return "trial \(best.trial.number)\(score), with \(best.misses.joined(separator: "; "))"
    }
}
