public import Autotune
public import AutotuneReport
import AutotuneRunner
import Foundation

/// Two or more studies of the same objective side by side: the same task at parallel 1 and 4, the same server on
/// two machines, two strategies. For each, its search (strategy, parallelism, trials), what it found (the best,
/// its gain over the baseline, or the front), and how soon (trials and wall-clock time until its best first
/// finished); then the best configurations parameter by parameter.
public struct StudyComparison: Sendable {
    /// One study's row.
    public struct Entry: Sendable, Encodable {
        /// The study's name.
        public var study: String
        /// Its strategy's name.
        public var strategy: String
        /// Its parallelism: the most trials that ran at once (a run's `--parallel` is not kept with the study).
        public var parallel: Int
        /// Trials by state.
        public var trials: [String: Int]
        /// Seconds from its first trial's start to its last trial's end.
        public var wallSeconds: Double?
        /// Its recommended trial's number and score (single objective).
        public var best: BestTrial?
        /// The gain of the best over the baseline, as a fraction.
        public var gain: Double?
        /// Trials finished when the best finished, and the seconds from the first start to then.
        public var trialsToBest: Int?
        /// Seconds from the first trial's start until the best finished.
        public var secondsToBest: Double?
        /// With several objectives: the front's trial numbers.
        public var front: [Int]
        /// The best trial's configuration.
        public var configuration: [String: ParameterValue]
    }

    /// The objective they share.
    public let objective: Objective
    /// One entry per study, in the order given.
    public let entries: [Entry]
    /// Every parameter any of them has, in the first study's order, then the others'.
    public let parameters: [Parameter]

    /// Compares `studies` (with their trials); refuses fewer than two, and studies whose objectives differ, since
    /// their scores would not mean the same.
    public init(_ studies: [(study: StoredStudy, trials: [Trial], result: StudyResult)]) throws {
        guard studies.count >= 2 else {
            throw AutotuneError(.invalidArgument, "compare needs two or more studies")
        }
        let first = studies[0].study.definition
        for other in studies.dropFirst() where other.study.definition.objective != first.objective {
            throw AutotuneError(
                .invalidArgument,
                "'\(other.study.definition.name)' has another objective than '\(first.name)' (\(other.study.definition.objective.label) against \(first.objective.label)): their scores cannot be compared"
            )
        }
        objective = first.objective
        var parameters: [Parameter] = []
        for (study, _, _) in studies {
            for parameter in study.definition.space.parameters
            where !parameters.contains(where: { $0.name == parameter.name }) {
                parameters.append(parameter)
            }
        }
        self.parameters = parameters
        entries = studies.map { study, trials, result in
            let starts = trials.compactMap(\.startedAt)
            let ends = trials.compactMap(\.finishedAt)
            let begin = starts.min()
            var entry = Entry(
                study: study.definition.name, strategy: study.definition.strategy.name,
                parallel: Self.mostAtOnce(trials),
                trials: Dictionary(grouping: trials, by: \.state.rawValue).mapValues(\.count),
                wallSeconds: begin.flatMap { begin in ends.max().map { $0.timeIntervalSince(begin) } },
                best: result.recommended, gain: result.gain?.fraction, front: result.front.map(\.number),
                configuration: [:])
            let bestNumber = result.recommended?.number ?? result.front.first?.number
            if let number = bestNumber, let trial = trials.first(where: { $0.number == number }) {
                entry.configuration = trial.configuration.values
                if let end = trial.finishedAt, let begin {
                    entry.secondsToBest = end.timeIntervalSince(begin)
                    entry.trialsToBest = trials.filter { ($0.finishedAt ?? .distantFuture) <= end }.count
                }
            }
            return entry
        }
    }

    /// The most trials whose runs overlapped in time.
    static func mostAtOnce(_ trials: [Trial]) -> Int {
        var events: [(Date, Int)] = []
        for trial in trials {
            guard let start = trial.startedAt, let end = trial.finishedAt else { continue }
            events += [(start, 1), (end, -1)]
        }
        // Ends before starts at the same instant: a slot freed and taken again is one slot.
        events.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        var running = 0
        var most = 0
        for (_, change) in events {
            running += change
            most = max(most, running)
        }
        return most
    }

    /// A study's row of the comparison's table, as text.
    func cells(_ entry: Entry) -> [String] {
        let multi = objective.isMultiObjective
        let total = entry.trials.values.reduce(0, +)
        let completed = entry.trials[TrialState.completed.rawValue] ?? 0
        let failed = entry.trials[TrialState.failed.rawValue] ?? 0
        let best: String =
            multi ? "\(entry.front.count) trials" : entry.best.map { HumanNumber.format($0.score) } ?? "–"
        let number: String = multi ? "" : entry.best.map { String($0.number) } ?? "–"
        let gain: String = entry.gain.map { String(format: "%+.1f%%", $0 * 100) } ?? "–"
        var toBest = "–"
        if let trials = entry.trialsToBest {
            toBest = "\(trials) trials, \(entry.secondsToBest.map(ProgressFormat.duration) ?? "–")"
        }
        return [
            entry.study, entry.strategy, String(entry.parallel), "\(total) (\(completed) completed, \(failed) failed)",
            entry.wallSeconds.map(ProgressFormat.duration) ?? "–", best, number, gain, toBest,
        ]
    }

    /// The studies' table's columns.
    var columns: [String] {
        [
            "study", "strategy", "at once", "trials", "wall", objective.isMultiObjective ? "front" : "best", "trial",
            "gain",
            "to best",
        ]
    }

    /// What the objective is: its goals and constraints.
    var objectiveText: String {
        let goals = objective.allGoals.map { "\($0.direction.rawValue) \($0.label)" }.joined(separator: ", ")
        let constraints = objective.constraints.map(\.description).joined(separator: ", ")
        return goals + (constraints.isEmpty ? "" : " subject to \(constraints)")
    }

    /// The title of the configurations' table.
    var configurationsTitle: String {
        objective.isMultiObjective ? "First front member of each" : "Best configurations"
    }

    /// Each study's best configuration's value of `parameter`, in the studies' order.
    func values(of parameter: Parameter) -> [String] {
        entries.map { entry in entry.configuration[parameter.name].map { parameter.display($0) } ?? "–" }
    }

    /// The comparison as text: the studies' table, then the best configurations' table.
    public var text: String {
        var lines = ["Comparing \(entries.count) studies: \(objectiveText)", ""]
        lines.append(TextTable.render([columns] + entries.map(cells)))
        lines += ["", configurationsTitle]
        let table = [["parameter"] + entries.map(\.study)] + parameters.map { [$0.name] + values(of: $0) }
        lines.append(TextTable.render(table))
        return lines.joined(separator: "\n")
    }
}

extension StudyComparison {
    /// The comparison as one self-contained HTML page (no script library, no network): the studies' table, the
    /// best configurations', and the shared charts of ``ComparisonCharts``; study names linked by `studyLink`
    /// (the dashboard's study pages).
    public func html(_ studies: [ComparisonCharts.Study], studyLink: ((String) -> String)? = nil) -> String {
        func name(_ study: String) -> String {
            guard let studyLink else { return HTML.escape(study) }
            return "<a href=\"\(HTML.escape(studyLink(study)))\">\(HTML.escape(study))</a>"
        }
        var html = """
            <!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
            <title>\(HTML.escape(entries.map(\.study).joined(separator: " vs "))) — Autotune</title>
            <style>\(StudyReport.style)</style></head><body><div id="report">
            <section id="comparison" class="wide"><h1>\(entries.map { name($0.study) }.joined(separator: " · "))</h1>
            <p class="meta">\(HTML.escape(objectiveText))</p>
            <table class="trials comparison"><thead><tr>\(columns.map { "<th>\(HTML.escape($0))</th>" }.joined())</tr></thead><tbody>
            """
        for entry in entries {
            let row = cells(entry)
            html +=
                "<tr><td>\(name(entry.study))</td>" + row.dropFirst().map { "<td>\(HTML.escape($0))</td>" }.joined()
                + "</tr>"
        }
        html += "</tbody></table><h2>\(configurationsTitle)</h2>"
        html += "<table class=\"trials\"><thead><tr><th>parameter</th>"
        html += entries.map { "<th>\(HTML.escape($0.study))</th>" }.joined() + "</tr></thead><tbody>"
        for parameter in parameters {
            let values = values(of: parameter)
            // A parameter the best configurations disagree on is the one to look at.
            let differs = Set(values).count > 1
            html +=
                "<tr\(differs ? " class=\"differs\"" : "")><th>\(HTML.escape(parameter.name))</th>"
                + values.map { "<td>\(HTML.escape($0))</td>" }.joined() + "</tr>"
        }
        html += "</tbody></table></section>"
        html += ComparisonCharts.sections(objective: objective, studies: studies)
        return html + "</div></body></html>"
    }
}

extension StudyComparison {
    /// The comparison of `studies`, their trials read from `store`, with what its charts draw.
    public static func loading(_ studies: [StoredStudy], from store: any StudyStore) async throws -> (
        comparison: StudyComparison, charts: [ComparisonCharts.Study]
    ) {
        var loaded: [(study: StoredStudy, trials: [Trial], result: StudyResult)] = []
        for study in studies {
            let trials = try await store.trials(ofStudy: study.id)
            loaded.append((study, trials, await study.result(trials: trials)))
        }
        let charts = loaded.map {
            ComparisonCharts.Study(name: $0.study.definition.name, trials: $0.trials, result: $0.result)
        }
        return (try StudyComparison(loaded), charts)
    }
}
