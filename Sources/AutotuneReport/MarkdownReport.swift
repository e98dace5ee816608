import Autotune
import Foundation

extension StudyReport {
    /// A study in Markdown, for a pull request or a ticket: what was tuned, the recommendation with its
    /// parameters, command and gain over the baseline, the confirmation when there was one, the front with
    /// several objectives, the `top` best trials, and the failures by stage and cause.
    public static func markdown(_ input: ReportInput, top: Int = 5) -> String {
        let model = Model(input)
        let definition = model.definition
        let result = input.result
        let counts = Dictionary(grouping: model.trials, by: \.state).mapValues(\.count)
        var lines: [String] = ["# Study `\(definition.name)`", ""]
        let goals = model.objective.allGoals.map { "\($0.direction.rawValue) `\($0.label)`" }.joined(separator: ", ")
        let constraints = definition.objective.constraints.map { "`\($0)`" }.joined(separator: ", ")
        let states = TrialState.allCases.compactMap { state in counts[state].map { "\($0) \(state.rawValue)" } }
        lines.append(
            "\(goals)\(constraints.isEmpty ? "" : " subject to \(constraints)") · \(definition.strategy.name) search · "
                + "parallel \(definition.parallel) · \(model.trials.count) trials (\(states.joined(separator: ", ")))")
        lines.append("")
        lines.append("## Recommendation")
        lines.append("")
        if let best = result.recommended, let trial = model.trials.first(where: { $0.number == best.number }) {
            var sentence = "Trial \(trial.number)\(result.isConfirmed ? " (confirmed by its repeats)" : ""): "
            sentence += "`\(model.objective.label)` = **\(label(best.score))**"
            if let gain = result.gain, let base = gain.baselineScore, let fraction = gain.fraction, base != 0 {
                sentence += String(
                    format: ", %+.1f%% against the baseline (trial %d, %@)", fraction * 100,
                    gain.baseline, label(base))
                if let low = gain.low, let high = gain.high {
                    sentence += String(format: "; 90%% interval %+.1f%% to %+.1f%%", low * 100, high * 100)
                    if gain.withinNoise { sentence += ", within the noise" }
                } else if gain.bestRuns < 2 || gain.baselineRuns < 2 {
                    sentence += " from one measurement of each"
                }
            }
            lines.append(sentence + ".")
            lines.append("")
            lines.append("| parameter | value |")
            lines.append("| --- | --- |")
            for parameter in definition.space.parameters {
                if let value = trial.configuration[parameter.name] {
                    lines.append("| `\(parameter.name)` | \(cell(parameter.display(value))) |")
                }
            }
            if let command = input.commands[trial.number] {
                lines += ["", "```sh", ShellWords.join(command), "```"]
            }
            if !result.confirmation.isEmpty {
                lines += [
                    "", "| rank | trial | search score | mean | worst | repeats ok | held up |",
                    "| --- | --- | --- | --- | --- | --- | --- |",
                ]
                for ranked in result.confirmation {
                    lines.append(
                        "| \(ranked.rank) | \(ranked.trial) | \(label(ranked.searchScore)) | "
                            + "\(ranked.mean.map(label) ?? "–") | \(ranked.worst.map(label) ?? "–") | "
                            + "\(ranked.scores.count)/\(ranked.repeats.count) | "
                            + "\(ranked.heldUp(objective: model.objective) ? "yes" : "no") |")
                }
            }
        } else {
            lines.append("No completed trial yet.")
        }
        if !result.front.isEmpty {
            lines += ["", "## Pareto front", ""]
            let goals = model.objective.allGoals
            lines.append("| trial | " + goals.map { "`\($0.label)`" }.joined(separator: " | ") + " |")
            lines.append("| --- |" + String(repeating: " --- |", count: goals.count))
            for point in result.front {
                lines.append("| \(point.number) | " + point.values.map(label).joined(separator: " | ") + " |")
            }
        }
        let ranked = model.completed.filter { $0.confirms == nil }.sorted {
            model.objective.isBetter($0.score!, than: $1.score!)
        }.prefix(top)
        if !ranked.isEmpty, result.front.isEmpty {
            lines += ["", "## Top \(ranked.count)", ""]
            let parameters = definition.space.parameters.map(\.name)
            let metrics = Array(Set(definition.objective.constraints.map(\.metric))).sorted()
            lines.append(
                "| trial | score | " + (parameters + metrics).map { "`\($0)`" }.joined(separator: " | ") + " |")
            lines.append("| --- | --- |" + String(repeating: " --- |", count: parameters.count + metrics.count))
            for trial in ranked {
                let values = definition.space.parameters.map { parameter in
                    trial.configuration[parameter.name].map { cell(parameter.display($0)) } ?? ""
                }
                let measured = metrics.map { trial.metrics[$0].map(label) ?? "" }
                lines.append(
                    "| \(trial.number) | \(label(trial.score!)) | " + (values + measured).joined(separator: " | ")
                        + " |")
            }
        }
        let groups = failureGroups(model.trials)
        if !groups.isEmpty {
            lines += ["", "## Failures", "", "| stage | cause (first trial's words) | trials |", "| --- | --- | --- |"]
            for group in groups {
                let cause = group.cause.count > 200 ? group.cause.prefix(199) + "…" : group.cause
                lines.append("| \(group.stage) | \(cell(cause)) | \(group.trials.count) |")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A table cell's text: pipes escaped, line breaks as spaces.
    private static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}
