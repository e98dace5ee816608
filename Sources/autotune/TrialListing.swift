import Autotune
import Foundation

/// The columns of a trials listing: by default what a person asks about a trial (its number, state and score,
/// the parameters, the metrics the objective and its constraints read, and why it failed), any others on request.
struct TrialListing {
    let definition: StudyDefinition
    let columns: [String]
    private let parameters: [String: Parameter]

    /// The columns for `trials`: `requested` when given (checked), else the defaults, with every metric when
    /// `allMetrics`; an `export` (CSV) has every metric and the attempt count always.
    init(
        definition: StudyDefinition, trials: [Trial], requested: [String]? = nil, allMetrics: Bool = false,
        export: Bool = false
    ) throws {
        let allMetrics = allMetrics || export
        self.definition = definition
        parameters = Dictionary(uniqueKeysWithValues: definition.space.parameters.map { ($0.name, $0) })
        // What early stops saved belongs beside the objective's metrics whenever the benchmark reports it.
        let savings = ["early_stopped_levels", "benchmark_s_saved"].filter { name in
            trials.contains { $0.metrics[name] != nil }
        }
        let metrics =
            allMetrics
            ? Set(trials.flatMap(\.metrics.keys)).sorted()
            : Self.objectiveMetrics(definition) + savings.filter { !Self.objectiveMetrics(definition).contains($0) }
        let placed = trials.contains { $0.host != nil }
        let rerun = export || trials.contains { $0.attempt > 1 }
        let confirming = export ? definition.confirm != nil : trials.contains { $0.confirms != nil }
        let defaults =
            ["number", "state", "score"] + (confirming ? ["confirms"] : []) + definition.space.parameters.map(\.name)
            + metrics
            + (placed ? ["node", "gpus"] : []) + (rerun ? ["attempt"] : []) + ["error"]
        guard let requested else {
            columns = defaults
            return
        }
        let known = Set(
            Self.fixedColumns + definition.space.parameters.map(\.name) + trials.flatMap(\.metrics.keys)
                + Self.objectiveMetrics(definition))
        if let unknown = requested.first(where: { !known.contains($0) }) {
            let hint = suggestion(for: unknown, among: Array(known)).map { " (did you mean '\($0)'?)" } ?? ""
            throw CLIError(
                .invalidTask,
                "--columns: no column '\(unknown)'\(hint); columns are \(Self.fixedColumns.joined(separator: ", ")), the parameters and the metrics"
            )
        }
        columns = requested
    }

    static let fixedColumns = [
        "number", "state", "score", "attempt", "error", "node", "gpus", "port", "started", "seconds", "confirms",
    ]

    /// The metrics the objective and its constraints read, in that order.
    static func objectiveMetrics(_ definition: StudyDefinition) -> [String] {
        var names: [String] = []
        let goals = definition.objective.allGoals.flatMap { $0.terms.map(\.metric) }
        for name in goals + definition.objective.constraints.map(\.metric)
        where !names.contains(name) {
            names.append(name)
        }
        return names
    }

    var header: [String] { columns }

    /// A trial's cells: for people (about four digits, floats at their range's precision, the failure in one
    /// line), or `exact` for CSV (full precision, the whole message).
    func row(_ trial: Trial, exact: Bool) -> [String] {
        columns.map { cell($0, trial, exact: exact) }
    }

    private func cell(_ column: String, _ trial: Trial, exact: Bool) -> String {
        let number = { (value: Double) in exact ? "\(value)" : HumanNumber.format(value) }
        switch column {
        case "number": return String(trial.number)
        case "state": return trial.state.rawValue
        case "score": return trial.score.map(number) ?? ""
        case "attempt": return String(trial.attempt)
        case "confirms": return trial.confirms.map(String.init) ?? ""
        case "error": return exact ? trial.error?.description ?? "" : trial.error?.summary ?? ""
        case "node": return trial.host ?? ""
        case "gpus": return trial.gpus.map { $0.map(String.init).joined(separator: ",") } ?? ""
        case "port": return trial.port.map(String.init) ?? ""
        case "started":
            return trial.startedAt.map { $0.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)) } ?? ""
        case "seconds": return trial.timings["total"].map(number) ?? ""
        default:
            if let parameter = parameters[column] {
                guard let value = trial.configuration[column] else { return "" }
                return exact ? value.text : parameter.display(value)
            }
            return trial.metrics[column].map(number) ?? ""
        }
    }

    /// `trials` ordered by `key`: `score` puts the best first (unscored last), `-KEY` reverses, a parameter or
    /// metric sorts by its value (missing last), and anything else by number.
    func sorted(_ trials: [Trial], by key: String) throws -> [Trial] {
        let descending = key.hasPrefix("-")
        let name = descending ? String(key.dropFirst()) : key
        if name == "number" { return descending ? trials.reversed() : trials }
        if name == "score" {
            let objective = definition.objective
            let ranked = trials.sorted { a, b in
                switch (a.score, b.score) {
                case (let x?, let y?): return objective.isBetter(x, than: y)
                case (_?, nil): return true
                default: return false
                }
            }
            return descending ? ranked.reversed() : ranked
        }
        guard columns.contains(name) || parameters[name] != nil || trials.contains(where: { $0.metrics[name] != nil })
        else {
            throw CLIError(.invalidTask, "--sort: no column '\(name)' to sort by")
        }
        func value(_ trial: Trial) -> Double? {
            trial.configuration[name]?.numericValue ?? trial.metrics[name]
        }
        let ordered = trials.sorted { a, b in
            switch (value(a), value(b)) {
            case (let x?, let y?): return descending ? x > y : x < y
            case (_?, nil): return true
            case (nil, _?): return false
            case (nil, nil): return cell(name, a, exact: true) < cell(name, b, exact: true)
            }
        }
        return ordered
    }
}

/// The name of `candidates` closest to a misspelt one, if close enough.
func suggestion(for name: String, among candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var previous = row[0]
            row[0] = i
            for j in 1...b.count {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }
    let target = Array(name.lowercased())
    guard target.count <= 64 else { return nil }
    let best = candidates.map { ($0, distance(target, Array($0.lowercased()))) }.min { $0.1 < $1.1 }
    guard let (candidate, score) = best, score <= max(2, candidate.count / 3) else { return nil }
    return candidate
}

/// JSON for trials: dates with their milliseconds, slashes as they are.
func trialEncoder() -> JSONEncoder {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    encoder.dateEncodingStrategy = .custom { date, encoder in
        var container = encoder.singleValueContainer()
        try container.encode(date.formatted(style))
    }
    return encoder
}
