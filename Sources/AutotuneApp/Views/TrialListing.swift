public import Autotune
public import Foundation

/// The columns of a trials listing: by default what a person asks about a trial (its number, state and score,
/// the parameters, the metrics the objective and its constraints read, and why it failed), any others on request.
public struct TrialListing: Sendable {
    /// The study's definition.
    public let definition: StudyDefinition
    /// The columns, in order.
    public let columns: [String]
    private let parameters: [String: Parameter]

    /// The columns for `trials`: `requested` when given (checked), else the defaults, with every metric when
    /// `allMetrics`; an `export` (CSV) has every metric and the attempt count always.
    public init(
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
            ? Self.distinctMetrics(trials)
            : Self.objectiveMetrics(definition) + savings.filter { !Self.objectiveMetrics(definition).contains($0) }
        let placed = trials.contains { $0.host != nil }
        let rerun = export || trials.contains { $0.attempt > 1 }
        let confirming = export ? definition.confirm != nil : trials.contains { $0.confirms != nil }
        let fixed = ["number", "state", "score"] + (confirming ? ["confirms"] : [])
        let parameterNames = definition.space.parameters.map(\.name)
        // A metric named like a column already shown (an objective on a metric called `score`) is shown once.
        let shown = Set(fixed + parameterNames)
        let defaults =
            fixed + parameterNames + metrics.filter { !shown.contains($0) }
            + (placed ? ["node", "gpus"] : []) + (rerun ? ["attempt"] : []) + ["error"]
        guard let requested else {
            columns = defaults
            return
        }
        let known = Set(
            Self.fixedColumns + definition.space.parameters.map(\.name) + trials.flatMap(\.metrics.keys)
                + Self.objectiveMetrics(definition))
        if let unknown = requested.first(where: { !known.contains($0) }) {
            throw AutotuneError(
                .invalidArgument,
                "--columns: no column '\(unknown)'\(Suggestion.hint(for: unknown, among: Array(known))); columns are \(Self.fixedColumns.joined(separator: ", ")), the parameters and the metrics"
            )
        }
        columns = requested
    }

    /// The columns every study has.
    public static let fixedColumns = [
        "number", "state", "score", "attempt", "error", "node", "gpus", "port", "started", "seconds", "confirms",
    ]

    /// The metrics the objective and its constraints read, in that order.
    public static func objectiveMetrics(_ definition: StudyDefinition) -> [String] {
        var names: [String] = []
        let goals = definition.objective.allGoals.flatMap { $0.terms.map(\.metric) }
        for name in goals + definition.objective.constraints.map(\.metric)
        where !names.contains(name) {
            names.append(name)
        }
        return names
    }

    /// The header row.
    public var header: [String] { columns }

    /// A trial's cells: for people (about four digits, floats at their range's precision, the failure in one
    /// line), or `exact` for CSV (full precision, the whole message).
    public func row(_ trial: Trial, exact: Bool) -> [String] {
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

    /// The table for a terminal: every column but the failure, which goes under its trial, cut to the width.
    public func fitted(_ trials: [Trial], layout: FittedTable) -> String {
        let shown = columns.indices.filter { columns[$0] != "error" }
        let rows = trials.map { trial in
            let cells = row(trial, exact: false)
            return shown.map { cells[$0] }
        }
        let notes = trials.map { trial in columns.contains("error") ? trial.error?.summary : nil }
        return layout.render(
            header: shown.map { columns[$0] }, rows: rows, notes: notes,
            title: { "trial \(trials[$0].number) · \(trials[$0].state.rawValue)" })
    }

    /// Every metric the trials reported, once: a level's `c64.ttft_ms_p99` is left out when every trial that has
    /// it reports the same value as `ttft_ms_p99` (a benchmark of one level reports both).
    static func distinctMetrics(_ trials: [Trial]) -> [String] {
        let names = Set(trials.flatMap(\.metrics.keys))
        return names.filter { name in
            guard let dot = name.firstIndex(of: "."), case let bare = String(name[name.index(after: dot)...]),
                names.contains(bare)
            else { return true }
            return trials.contains { trial in
                guard let value = trial.metrics[name] else { return false }
                return trial.metrics[bare] != value
            }
        }.sorted()
    }

    /// Fails unless `key` (`score`, `number`, a column, parameter or metric, `-` reversing it) can order
    /// `trials`, naming the closest key.
    public static func checkSortKey(_ key: String, definition: StudyDefinition, trials: [Trial], columns: [String])
        throws
    {
        let name = key.hasPrefix("-") ? String(key.dropFirst()) : key
        let known =
            ["score", "number"] + columns + definition.space.parameters.map(\.name)
            + Array(Set(trials.flatMap(\.metrics.keys)))
        guard !known.contains(name) else { return }
        throw AutotuneError(
            .invalidArgument,
            "--sort: no column '\(name)' to sort by\(Suggestion.hint(for: name, among: known)); sort by score, number, a parameter or a metric (-NAME reverses)"
        )
    }

    /// `trials` ordered by `key`: `score` puts the best first (unscored last), `-KEY` reverses, a parameter or
    /// metric sorts by its value (missing last), and anything else by number.
    public func sorted(_ trials: [Trial], by key: String) throws -> [Trial] {
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
        try Self.checkSortKey(key, definition: definition, trials: trials, columns: columns)
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

/// JSON for trials: dates with their milliseconds, slashes as they are.
public func trialEncoder() -> JSONEncoder {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    encoder.dateEncodingStrategy = .custom { date, encoder in
        var container = encoder.singleValueContainer()
        try container.encode(date.formatted(style))
    }
    return encoder
}
