public import Autotune
public import Foundation

/// `best` of a study of several objectives: the Pareto front, best first on the first objective, each trial with
/// its command, and the baseline against it.
public struct FrontView: Sendable {
    /// A front trial.
    public struct Member: Sendable, Encodable {
        /// The trial.
        public var trial: Trial
        /// Its objective values.
        public var values: [Double]
        /// Its launch command.
        public var command: [String]
    }

    /// The study.
    public var study: StoredStudy
    /// The front, best first on the first objective.
    public var members: [Member]
    /// The baseline against the front, when the study has one that completed.
    public var comparison: ParetoComparison?

    /// The view of `study`'s front.
    public init(study: StoredStudy, trials: [Trial], trialsDirectory: URL) throws {
        let byNumber = Dictionary(uniqueKeysWithValues: trials.map { ($0.number, $0) })
        let front = (study.best?.front ?? []).filter { byNumber[$0.number] != nil }
        self.study = study
        members = try front.map { point in
            let trial = byNumber[point.number]!
            return Member(
                trial: trial, values: point.values,
                command: try study.definition.launchCommand(for: trial, trialsDirectory: trialsDirectory))
        }
        comparison =
            study.definition.baseline == nil
            ? nil
            : byNumber[0].flatMap {
                ParetoComparison(baseline: $0, front: front, objective: study.definition.objective)
            }
    }

    /// What `best --format json` prints for a front.
    public struct JSON: Encodable {
        /// An objective.
        public struct Goal: Encodable {
            /// Its label.
            public var name: String
            /// `maximize` or `minimize`.
            public var direction: String
        }

        /// The study's name.
        public var study: String
        /// The objectives.
        public var objectives: [Goal]
        /// The front.
        public var front: [Member]
        /// The baseline against it.
        public var baseline: ParetoComparison?
    }

    /// The JSON value.
    public var json: JSON {
        JSON(
            study: study.definition.name,
            objectives: study.definition.objective.goals.map {
                JSON.Goal(name: $0.label, direction: $0.direction.rawValue)
            },
            front: members, baseline: comparison)
    }

    /// The text: the front as a table, each command below it by trial number, and the baseline's sentence.
    public var text: String {
        let definition = study.definition
        let goals = definition.objective.goals
        let names = goals.map { "\($0.direction == .maximize ? "max" : "min") \($0.label)" }
        var lines = [
            "Study '\(definition.name)': the Pareto front of \(names.joined(separator: ", ")): \(members.count) trial\(members.count == 1 ? "" : "s") no other beats on every objective, best first on \(goals[0].label)"
        ]
        let parameters = definition.space.searched.map(\.name)
        let declared = Dictionary(uniqueKeysWithValues: definition.space.parameters.map { ($0.name, $0) })
        var rows = [["trial"] + goals.map(\.label) + parameters]
        for member in members {
            var row = [String(member.trial.number)] + member.values.map { HumanNumber.format($0) }
            for name in parameters {
                row.append(member.trial.configuration[name].map { declared[name]?.display($0) ?? $0.text } ?? "")
            }
            rows.append(row)
        }
        lines.append(TextTable.render(rows))
        // Commands are long: below the table, one per trial, so the table fits a terminal.
        if !members.isEmpty {
            lines.append("")
            lines.append("Commands:")
            for member in members { lines.append("  #\(member.trial.number): \(ShellWords.join(member.command))") }
        }
        if let comparison { lines.append(comparison.sentence(goals: goals)) }
        lines.append("Pick one for an SLO: autotune best \(definition.name) --pick \"\(goals.last!.label) <= ...\"")
        return lines.joined(separator: "\n")
    }
}

/// The baseline against a Pareto front: its values, the gain of the front's best on each objective, and the
/// front trial that dominates it by the most (the largest box between the two, each side relative to the
/// baseline's value).
public struct ParetoComparison: Sendable, Encodable {
    /// The baseline's number (0).
    public var trial: Int
    /// Its objective values, when it completed.
    public var values: [Double]?
    /// The best front value on each objective as a gain over the baseline (0.25 is 25% better).
    public var bestGains: [Double]?
    /// The front trial that dominates the baseline by the most, if one dominates it.
    public var dominatedBy: Int?
    /// That trial's gain on each objective.
    public var gains: [Double]?

    /// The comparison of `baseline` with `front`, `nil` when the baseline measured no objective values.
    public init?(baseline: Trial, front: [FrontPoint], objective: Objective) {
        trial = baseline.number
        guard baseline.state == .completed, let values = objective.values(baseline.metrics) else { return nil }
        self.values = values
        let goals = objective.goals
        func gain(_ value: Double, _ index: Int) -> Double {
            StudyResult.gain(value, over: values[index], objective: Objective(goals[index].direction, terms: []))
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
    public func sentence(goals: [Objective.Goal]) -> String {
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
