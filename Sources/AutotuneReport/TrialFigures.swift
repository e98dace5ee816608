import Autotune
import Foundation

/// A trial's figures as a person reads them: the trial's own (its capacity, its score's terms) once, and each
/// load level's side by side, a column per level; not the flat list in which a level's figures appear twice
/// (`c64.ttft_ms_p99` and, for the level reported, `ttft_ms_p99`).
public enum TrialFigures {
    /// `metrics` split into the trial's own figures and the levels' (`c64.…`, `r4.5.…`), levels in order of load;
    /// `reported` names the level whose figures the unprefixed names repeat, which are left out of `trial`.
    public static func split(_ metrics: [String: Double]) -> (
        trial: [(String, Double)], levels: [RequestSample.Level], reported: String?
    ) {
        var levels: [String: [String: Double]] = [:]
        var plain: [String: Double] = [:]
        for (key, value) in metrics {
            if let match = key.wholeMatch(of: #/([cr][0-9]+(?:\.[0-9]+)?)\.([A-Za-z_].*)/#) {
                levels[String(match.1), default: [:]][String(match.2)] = value
            } else {
                plain[key] = value
            }
        }
        // The level reported is the one every unprefixed figure it shares a name with equals.
        let reported = levels.keys.sorted().first { name in
            let level = levels[name]!
            let shared = plain.keys.filter { level[$0] != nil }
            return !shared.isEmpty && shared.allSatisfy { same(level[$0], plain[$0]!) }
        }
        let repeated = reported.map { Set(levels[$0]!.keys) } ?? []
        let trial = plain.filter { !repeated.contains($0.key) }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let ordered = levels.map { RequestSample.Level(name: $0.key, metrics: $0.value) }
        return (trial, ordered.sorted(by: RequestSample.Level.byLoad), reported)
    }

    /// Whether a level's figure is the trial's: equal but for the last bits (a figure may be recomputed, or pass
    /// through JSON, on its way to the trial).
    static func same(_ a: Double?, _ b: Double) -> Bool {
        guard let a else { return false }
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-300) || a == b
    }

    /// The figures as HTML tables: the trial's, then one row per figure and one column per level. `sample`, the
    /// trial's benchmark file when the built-in generator wrote one, gives every level it ran (a capacity search
    /// records only the reported one's figures with the trial).
    public static func html(_ metrics: [String: Double], sample: RequestSample? = nil) -> String {
        var (trial, levels, reported) = split(metrics)
        if let sample, !sample.levels.isEmpty {
            levels = sample.levels.sorted(by: RequestSample.Level.byLoad)
            reported = sample.level
            let shown = sample.levels.first { $0.name == sample.level }?.metrics ?? [:]
            trial = trial.filter { name, value in !same(shown[name], value) }
        }
        var html = ""
        if !trial.isEmpty {
            html += "<h2>Figures</h2><table class=\"config figures\">"
            for (key, value) in trial { html += "<tr><th>\(escape(key))</th><td>\(escape(label(value)))</td></tr>" }
            html += "</table>"
        }
        guard !levels.isEmpty else { return html }
        let names = Set(levels.flatMap(\.metrics.keys)).sorted()
        html +=
            "<h2>By load level</h2><div class=\"scroll\"><table class=\"levels\"><thead><tr><th>figure</th>"
        for level in levels {
            html +=
                "<th>\(escape(level.name))\(level.name == reported ? " (reported)" : "")</th>"
        }
        html += "</tr></thead><tbody>"
        for name in names {
            html += "<tr><th>\(escape(name))</th>"
            for level in levels {
                let value = level.metrics[name].map { escape(label($0)) } ?? ""
                html += "<td\(level.name == reported ? " class=\"reported\"" : "")>\(value)</td>"
            }
            html += "</tr>"
        }
        return html + "</tbody></table></div>"
    }
}

extension StudyReport {
    /// One trial's benchmark as charts, for its own page: its load levels against the SLO, its requests' latency
    /// distributions, and each request's latency against its prompt length.
    public static func trialServing(_ input: ReportInput, sample: RequestSample) -> String {
        let model = Model(input, analysis: false)
        return [
            capacity(model, sample, baseline: nil), latencyDistributions(model, sample, baseline: nil),
            requests(model, sample),
        ].joined(separator: "\n")
    }
}
