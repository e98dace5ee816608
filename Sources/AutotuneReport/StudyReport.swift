public import Autotune
import Foundation

/// What a report shows: the study, its trials, what it found (decided once, by ``StudyResult``), and the launch
/// commands of the trials it names (the best, the front), which only the caller can render.
public struct ReportInput: Sendable {
    /// The study as stored.
    public var study: StoredStudy
    /// Its trials, any state.
    public var trials: [Trial]
    /// What the study found: the recommended trial, the confirmation, the gain.
    public var result: StudyResult
    /// Launch commands by trial number.
    public var commands: [Int: [String]]
    /// Link trial numbers to `trialLink(number)` (the dashboard's trial pages).
    public var trialLink: (@Sendable (Int) -> String)?
    /// The recommended trial's requests, for a serving study benchmarked by the built-in generator.
    public var requests: RequestSample?
    /// The baseline trial's requests, when it is not the recommended one: its latency distributions are drawn
    /// beside the recommended trial's.
    public var baselineRequests: RequestSample?

    /// Creates an input.
    public init(
        study: StoredStudy, trials: [Trial], commands: [Int: [String]] = [:],
        trialLink: (@Sendable (Int) -> String)? = nil
    ) {
        self.study = study
        self.trials = trials
        self.result = StudyResult(definition: study.definition, trials: trials, best: study.best)
        self.commands = commands
        self.trialLink = trialLink
    }
}

/// A study as one self-contained HTML page: charts drawn as SVG here (no script library, no network), a
/// sortable and filterable trials table, the best configuration and its command.
///
/// Sections: summary and best; optimisation history by trial and by wall time (best so far; failed, pruned and
/// crashed trials marked); the Pareto front with several objectives (front, dominated, infeasible, baseline);
/// parallel coordinates coloured by score; parameter importance (``ParameterImportance``); a slice per
/// parameter; failures by stage and cause; a timeline of trials per GPU or slot; every trial. Each chart is an
/// `<svg data-chart="…">` whose markers carry the class `point`, so a test can count them.
public enum StudyReport {
    /// The whole page.
    public static func html(_ input: ReportInput, head: String = "", script: String = "") -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <title>\(escape(input.study.definition.name)) — Autotune</title>
        <style>\(style)</style>\(head)
        </head><body>
        <div id="selection" role="status"></div>
        <div id="report">\(sections(input))</div>
        <script>\(tableScript)\(script)</script>
        </body></html>
        """
    }

    /// The page's body: every section, for pages that refresh it in place.
    public static func sections(_ input: ReportInput) -> String {
        let model = Model(input)
        var parts = [summary(model)]
        parts.append(history(model))
        if model.objective.isMultiObjective { parts.append(pareto(model)) }
        parts.append(parallelCoordinates(model))
        parts.append(importance(model))
        parts.append(contour(model))
        parts.append(edf(model))
        parts.append(slices(model))
        if case .serving = model.definition.experiment {
            parts.append(throughputLatency(model))
            if let sample = input.requests {
                parts.append(capacity(model, sample, baseline: input.baselineRequests))
                parts.append(latencyDistributions(model, sample, baseline: input.baselineRequests))
            }
        }
        if let sample = input.requests { parts.append(requests(model, sample)) }
        parts.append(failures(model))
        parts.append(timeline(model))
        parts.append(trialsTable(model))
        return parts.joined(separator: "\n")
    }

    // MARK: - Model

    /// The study's figures, computed once.
    struct Model {
        let input: ReportInput
        let definition: StudyDefinition
        let objective: Objective
        let trials: [Trial]
        let completed: [Trial]
        let start: Date?
        /// How many trials are confirmation runs (repeats of a leading configuration).
        let confirmationRuns: Int
        /// Parameter importance, when there are enough completed trials.
        let importance: ParameterImportance.Estimate?

        /// The model of `input`; `analysis: false` leaves out what a single trial's page does not draw (the
        /// importance fit, a dozen Gaussian processes).
        init(_ input: ReportInput, analysis: Bool = true) {
            self.input = input
            definition = input.study.definition
            objective = definition.objective
            trials = input.trials.sorted { $0.number < $1.number }
            completed = trials.filter { $0.state == .completed && $0.score != nil }
            start = trials.compactMap(\.startedAt).min()
            confirmationRuns = trials.filter { $0.confirms != nil }.count
            importance = analysis ? ParameterImportance.estimate(space: definition.space, trials: trials) : nil
        }

        /// What a finished trial is, as the charts tell them apart.
        func kind(_ trial: Trial) -> String {
            switch trial.state {
            case .completed: return "completed"
            case .pruned: return "pruned"
            case .failed:
                return trial.error?.stage.isConfigurationFault == true && trial.metrics.isEmpty ? "crashed" : "failed"
            default: return trial.state.rawValue
            }
        }

        /// The trial's number, linked when the page has trial pages.
        func link(_ number: Int) -> String {
            guard let make = input.trialLink else { return "#\(number)" }
            return "<a href=\"\(escape(make(number)))\">#\(number)</a>"
        }

        /// How a measured trial is drawn where some trials stand out (the front, the recommended one): the
        /// baseline (trial 0 of a study with one), `highlighted`, `completed` for the other completed ones, or
        /// infeasible (measured, but it broke a constraint).
        func markerKind(_ trial: Trial, highlighted: Bool, completed: String) -> String {
            if definition.baseline != nil, trial.number == 0 { return "baseline" }
            if highlighted { return "front" }
            return trial.state == .completed ? completed : "infeasible"
        }

        /// Whether `a` is a better score than `b`.
        func better(_ a: Double, _ b: Double) -> Bool { objective.isBetter(a, than: b) }

        /// The upper limits on serving metrics at `level` (`ttft_ms_p99`: 500): the benchmark's SLO and the
        /// objective's constraints, a constraint on `c32.ttft_ms_p99` bounding level c32's, a bare name any level's.
        func limits(atLevel level: String) -> [String: [Double]] {
            var limits: [String: [Double]] = [:]
            if case .serving(let serving) = definition.experiment, case .load(let load) = serving.benchmark {
                for (metric, limit) in load.slo { limits[metric, default: []].append(limit) }
            }
            for constraint in objective.constraints {
                let parts = constraint.metric.split(separator: ".", maxSplits: 1).map(String.init)
                guard parts.count == 1 || parts[0] == level, let maximum = constraint.maximum else { continue }
                limits[parts.last!, default: []].append(maximum)
            }
            return limits
        }
    }

    // MARK: - Sections

    static func summary(_ model: Model) -> String {
        let counts = Dictionary(grouping: model.trials, by: \.state).mapValues(\.count)
        let names = model.objective.allGoals.map { "\($0.direction.rawValue) \($0.label)" }.joined(separator: ", ")
        var html = "<section id=\"summary\" class=\"wide\"><h1>\(escape(model.definition.name))</h1>"
        html +=
            "<p class=\"meta\">\(escape(names)) · \(escape(model.definition.strategy.name)) search · parallel \(model.definition.parallel) · status \(escape(model.input.study.status.rawValue)) · \(model.trials.count) trials: "
        html +=
            TrialState.allCases.compactMap { state in counts[state].map { "\($0) \(state.rawValue)" } }.joined(
                separator: ", ")
        if model.confirmationRuns > 0 { html += " (\(model.confirmationRuns) of them confirmation runs)" }
        html += "</p>"
        let result = model.input.result
        let ranking = result.confirmation
        if let best = result.recommended, let trial = model.trials.first(where: { $0.number == best.number }) {
            let kind =
                result.isConfirmed
                ? " (confirmed: the \(model.definition.confirm?.rankBy == .worst ? "worst" : "mean") of its repeats)"
                : ""
            html += "<h2>Best</h2><p>Trial \(model.link(trial.number))\(kind): \(escape(model.objective.label)) = "
            html += "<b>\(escape(label(best.score)))</b>"
            if let gain = result.gain, let base = gain.baselineScore, let fraction = gain.fraction, base != 0 {
                var interval = ""
                if let low = gain.low, let high = gain.high {
                    interval = String(format: ", 90%% interval %+.1f%% to %+.1f%%", low * 100, high * 100)
                    if gain.withinNoise { interval += ": within the noise" }
                }
                html += " (baseline \(escape(label(base))), \(String(format: "%+.1f%%", fraction * 100))\(interval))"
            }
            html += "</p><table class=\"config\">"
            for parameter in model.definition.space.parameters {
                if let value = trial.configuration[parameter.name] {
                    html += "<tr><th>\(escape(parameter.name))</th><td>\(escape(parameter.display(value)))</td></tr>"
                }
            }
            html += "</table>"
            if let command = model.input.commands[trial.number] {
                html += "<pre class=\"command\">\(escape(ShellWords.join(command)))</pre>"
            }
            if !ranking.isEmpty { html += confirmation(model, ranking: ranking) }
        } else {
            html += "<p>No completed trial yet.</p>"
        }
        return html + "</section>"
    }

    /// The confirmation runs: each re-measured configuration's search figure against its repeats'.
    static func confirmation(_ model: Model, ranking: [ConfirmedResult]) -> String {
        var html =
            "<h3>Confirmed</h3><table class=\"confirmed\"><thead><tr><th>rank</th><th>trial</th><th>search rank</th><th>search score</th><th>mean</th><th>spread</th><th>worst</th><th>repeats</th><th>held up</th></tr></thead><tbody>"
        for result in ranking {
            let held =
                result.scores.count + result.failures == 0
                ? "–" : result.heldUp(objective: model.objective) ? "yes" : "no"
            let cells = [
                String(result.rank), model.link(result.trial), String(result.searchRank),
                escape(label(result.searchScore)),
                result.mean.map { escape(label($0)) } ?? "–", result.spread.map { escape(label($0)) } ?? "–",
                result.worst.map { escape(label($0)) } ?? "–",
                "\(result.scores.count)/\(result.repeats.count) ok"
                    + (result.unfinished > 0 ? ", \(result.unfinished) to run" : ""),
                held,
            ]
            html +=
                "<tr class=\"\(held == "no" ? "failed" : "completed")\">" + cells.map { "<td>\($0)</td>" }.joined()
                + "</tr>"
        }
        return html + "</tbody></table>"
    }

    static func history(_ model: Model) -> String {
        var html = "<section id=\"history\" class=\"wide\"><h2>Optimisation history</h2><div class=\"panels two\">"
        html += historyChart(model, name: "history", byTime: false)
        if model.start != nil { html += historyChart(model, name: "history-time", byTime: true) }
        html += "</div>"
        let repeats =
            model.confirmationRuns > 0
            ? " <span class=\"key confirm\">○</span> confirmation run (a repeat of a leading configuration)" : ""
        html +=
            "<p class=\"legend\"><span class=\"key completed\">●</span> completed <span class=\"key failed\">✕</span> failed <span class=\"key pruned\">—</span> pruned <span class=\"key crashed\">▲</span> crashed (configuration fault, nothing measured)\(repeats) — the line is the best the search found so far\(repeats.isEmpty ? "" : ", repeats left out")</p>"
        return html + "</section>"
    }

    private static func historyChart(_ model: Model, name: String, byTime: Bool) -> String {
        let finished = model.trials.filter(\.isFinished)
        func x(_ trial: Trial) -> Double? {
            guard byTime else { return Double(trial.number) }
            guard let start = model.start, let end = trial.finishedAt else { return nil }
            return end.timeIntervalSince(start)
        }
        let placed = finished.compactMap { trial in x(trial).map { (trial, $0) } }
        var chart = Chart(name: name)
        let scores = model.completed.compactMap(\.score)
        let xs = Scale(values: placed.map(\.1), start: chart.plotLeft, end: chart.plotRight)
        let ys = Scale(values: scores, start: chart.plotBottom - 12, end: chart.plotTop)
        chart.axes(
            x: xs, y: ys, xTitle: byTime ? "seconds since the study started" : "trial", yTitle: model.objective.label)
        var best: Double?
        var path = ""
        for (trial, position) in placed.sorted(by: { $0.1 < $1.1 }) {
            let kind = model.kind(trial)
            // A repeat measures a configuration the search already found: it is not a step of the search, and a
            // lucky repeat must not raise the best-so-far line.
            if let original = trial.confirms, let score = trial.score, trial.state == .completed {
                chart.point(
                    x: xs(position), y: ys(score), kind: "confirm",
                    tooltip: "trial \(trial.number): \(label(score)), a repeat of trial \(original)",
                    trial: trial.number)
            } else if let score = trial.score, trial.state == .completed {
                chart.point(
                    x: xs(position), y: ys(score), kind: kind,
                    tooltip: "trial \(trial.number): \(label(score))", trial: trial.number)
                if best.map({ model.better(score, $0) }) ?? true {
                    path +=
                        (path.isEmpty ? "M" : "H\(coordinate(xs(position)))V")
                        + (path.isEmpty
                            ? "\(coordinate(xs(position))),\(coordinate(ys(score)))" : coordinate(ys(score)))
                    best = score
                }
            } else {
                chart.point(
                    x: xs(position), y: chart.plotBottom - 4, kind: kind,
                    tooltip: "trial \(trial.number) \(kind): \(trial.error?.summary ?? "")", trial: trial.number)
            }
        }
        if !path.isEmpty {
            path += "H\(coordinate(chart.plotRight))"
            chart.append("<path class=\"best\" d=\"\(path)\"/>")
        }
        return chart.svg
    }

    static func pareto(_ model: Model) -> String {
        let goals = model.objective.goals
        let front = Set(model.input.study.best?.front.map(\.number) ?? [])
        var chart = Chart(name: "pareto", width: 640, height: 360)
        let measured = model.trials.compactMap { trial in model.objective.values(trial.metrics).map { (trial, $0) } }
        let xs = Scale(values: measured.map { $0.1[0] }, start: chart.plotLeft, end: chart.plotRight)
        let ys = Scale(values: measured.map { $0.1[1] }, start: chart.plotBottom, end: chart.plotTop)
        chart.axes(
            x: xs, y: ys, xTitle: "\(goals[0].direction == .maximize ? "↑" : "↓") \(goals[0].label)",
            yTitle: "\(goals[1].direction == .maximize ? "↑" : "↓") \(goals[1].label)")
        // The front as a staircase, in the order the objectives improve.
        let steps = measured.filter { front.contains($0.0.number) }.sorted { $0.1[0] < $1.1[0] }
        if steps.count > 1 {
            let points = steps.map { "\(coordinate(xs($0.1[0]))),\(coordinate(ys($0.1[1])))" }.joined(separator: " ")
            chart.append("<polyline class=\"front-line\" points=\"\(points)\"/>")
        }
        for (trial, values) in measured {
            let kind = model.markerKind(trial, highlighted: front.contains(trial.number), completed: "dominated")
            chart.point(
                x: xs(values[0]), y: ys(values[1]), kind: kind,
                tooltip:
                    "trial \(trial.number) (\(kind)): \(goals[0].label) \(label(values[0])), \(goals[1].label) \(label(values[1]))",
                radius: kind == "front" ? 5 : 4, trial: trial.number)
        }
        let crashed = model.trials.filter { $0.isFinished && model.objective.values($0.metrics) == nil }.count
        var html =
            "<section id=\"pareto\" class=\"wide\"><h2>Pareto front</h2><div class=\"panels two\"><div>" + chart.svg
        html +=
            "<p class=\"legend\"><span class=\"key front\">●</span> on the front (\(front.count)) <span class=\"key dominated\">●</span> dominated <span class=\"key infeasible\">●</span> infeasible (broke a constraint) <span class=\"key baseline\">◆</span> baseline — \(crashed) trials measured no objective values (crashed or failed early) and are not drawn</p></div>"
        html +=
            "<div class=\"scroll\"><table class=\"trials\"><thead><tr><th>trial</th>\(goals.map { "<th>\(escape($0.label))</th>" }.joined())<th>command</th></tr></thead><tbody>"
        for point in model.input.study.best?.front ?? [] {
            let command = model.input.commands[point.number].map { ShellWords.join($0) } ?? ""
            html +=
                "<tr data-trial=\"\(point.number)\"><td>\(model.link(point.number))</td>\(point.values.map { "<td>\(escape(label($0)))</td>" }.joined())<td><code>\(escape(command))</code></td></tr>"
        }
        return html + "</tbody></table></div></div></section>"
    }

    static func parallelCoordinates(_ model: Model) -> String {
        let parameters = model.definition.space.searched
        guard !parameters.isEmpty, !model.completed.isEmpty else {
            return
                "<section id=\"parallel\" class=\"wide\"><h2>Parallel coordinates</h2><p>No completed trial yet.</p></section>"
        }
        let axes = parameters.count + 1
        var chart = Chart(name: "parallel", width: max(1100, Double(axes) * 150), height: 340)
        // Inset from the plot's edges so the end axes' names and value labels stay inside the picture.
        let (first, last) = (chart.plotLeft + 30, chart.plotRight - 60)
        func axisX(_ index: Int) -> Double {
            first + (last - first) * Double(index) / Double(max(axes - 1, 1))
        }
        let scores = model.completed.map { $0.score! }
        let scoreScale = Scale(values: scores, start: chart.plotBottom, end: chart.plotTop, padding: 0)
        for index in 0..<axes {
            let x = axisX(index)
            chart.append(
                "<line class=\"axis\" x1=\"\(coordinate(x))\" y1=\"\(coordinate(chart.plotTop))\" x2=\"\(coordinate(x))\" y2=\"\(coordinate(chart.plotBottom))\"/>"
            )
            let name = index < parameters.count ? parameters[index].name : model.objective.label
            let labels =
                index < parameters.count
                ? Self.axisLabels(of: parameters[index]) : [(0, label(scores.min()!)), (1, label(scores.max()!))]
            for (unit, text) in labels {
                // Where the lines meet the axis: a category's (a boolean's false and true at ¼ and ¾), not the ends.
                let y = chart.plotBottom - unit * (chart.plotBottom - chart.plotTop)
                chart.append(
                    "<text class=\"tick\" x=\"\(coordinate(x + 4))\" y=\"\(coordinate(min(chart.plotBottom, max(chart.plotTop + 8, y + 4))))\">\(escape(text))</text>"
                )
            }
            // Alternate heights, so long names side by side do not overlap; the end axes' names are anchored
            // inward, so a long name (an objective's) is not cut at the picture's edge.
            let anchor = index == 0 ? "start" : index == axes - 1 ? "end" : "middle"
            let nameX = index == 0 ? max(4, x - 30) : index == axes - 1 ? chart.width - 4 : x
            chart.append(
                "<text class=\"title\" x=\"\(coordinate(nameX))\" y=\"\(coordinate(chart.height - 22 + Double(index % 2) * 14))\" text-anchor=\"\(anchor)\">\(escape(name))</text>"
            )
        }
        let low = scores.min()!
        let high = scores.max()!
        for trial in model.completed {
            guard let unit = try? model.definition.space.unitPoint(of: trial.configuration) else { continue }
            var points: [String] = []
            for (index, value) in unit.enumerated() {
                points.append(
                    "\(coordinate(axisX(index))),\(coordinate(chart.plotBottom - value * (chart.plotBottom - chart.plotTop)))"
                )
            }
            let score = trial.score!
            points.append("\(coordinate(axisX(parameters.count))),\(coordinate(scoreScale(score)))")
            var t = high > low ? (score - low) / (high - low) : 1
            if model.objective.direction == .minimize { t = 1 - t }
            chart.append(
                "<polyline class=\"point line\" data-trial=\"\(trial.number)\" style=\"stroke:\(ramp(t))\" points=\"\(points.joined(separator: " "))\"><title>trial \(trial.number): \(escape(label(score)))</title></polyline>"
            )
        }
        return
            "<section id=\"parallel\" class=\"wide\"><h2>Parallel coordinates</h2>\(chart.svg)<p class=\"legend\">One line per completed trial, each parameter on its own axis (bottom: its lowest value, top: its highest; log scales in log space), coloured from worst (dark) to best (yellow).</p></section>"
    }

    /// A parameter's labels on its parallel-coordinates axis, at the heights its values are drawn at: every
    /// category (up to eight; else the first and last), or the lowest and highest value.
    static func axisLabels(of parameter: Parameter) -> [(Double, String)] {
        let domain = parameter.domain
        func at(_ value: ParameterValue) -> (Double, String)? {
            domain.unit(of: value).map { ($0, parameter.display(value)) }
        }
        switch domain {
        case .int(let lower, let upper, _, _):
            return [at(.int(lower)), at(.int(upper))].compactMap { $0 }
        case .float(let lower, let upper, _): return [(0, label(lower)), (1, label(upper))]
        case .bool: return [at(.bool(false)), at(.bool(true))].compactMap { $0 }
        case .categorical(let values):
            let shown = values.count <= 8 ? values : [values.first!, values.last!]
            return shown.compactMap(at)
        default: return []
        }
    }

    static func importance(_ model: Model) -> String {
        var html = "<section id=\"importance\"><h2>Parameter importance</h2>"
        guard let estimate = model.importance else {
            return html + "<p>Needs five completed trials.</p></section>"
        }
        let shares = estimate.shares
        var chart = Chart(name: "importance", width: 640, height: 40 + Double(shares.count) * 26)
        let scale = Scale(values: [0, 1], start: chart.plotLeft + 100, end: chart.plotRight, padding: 0)
        for (index, entry) in shares.enumerated() {
            let y = chart.plotTop + Double(index) * 26
            chart.append(
                "<text class=\"tick\" x=\"\(coordinate(chart.plotLeft + 94))\" y=\"\(coordinate(y + 15))\" text-anchor=\"end\">\(escape(entry.name))</text>"
            )
            let range = String(format: "%.0f–%.0f%%", entry.low * 100, entry.high * 100)
            chart.append(
                "<rect class=\"point bar\" x=\"\(coordinate(scale(0)))\" y=\"\(coordinate(y + 3))\" width=\"\(coordinate(scale(entry.share) - scale(0)))\" height=\"16\"><title>\(escape(entry.name)): \(String(format: "%.1f%%", entry.share * 100)) (80% of resamples: \(range))</title></rect>"
            )
            // The figures after the whisker, or, where they would run off the picture, inside its right edge.
            let after = scale(max(entry.share, entry.high)) + 4
            let (textX, anchor) = after > chart.width - 90 ? (chart.width - 2, "end") : (after, "start")
            // The bootstrap interval, as a whisker across the bar.
            chart.append(
                "<line class=\"interval\" x1=\"\(coordinate(scale(entry.low)))\" x2=\"\(coordinate(scale(entry.high)))\" y1=\"\(coordinate(y + 11))\" y2=\"\(coordinate(y + 11))\"/>"
            )
            chart.append(
                "<text class=\"tick\" x=\"\(coordinate(textX))\" y=\"\(coordinate(y + 15))\" text-anchor=\"\(anchor)\">\(String(format: "%.0f%%", entry.share * 100)) (\(range))</text>"
            )
        }
        html += chart.svg
        if let caution = estimate.caution {
            html += "<p class=\"caution\">\(escape(caution.prefix(1).uppercased() + caution.dropFirst())).</p>"
        }
        return html
            + "<p class=\"legend\">The share of the score's variation each parameter explains on its own, from a Gaussian process fitted to the \(estimate.trials) completed trials (first-order effects; docs/architecture.md); the line across each bar spans the 10th to 90th percentile of the share over bootstrap resamples of the trials.</p></section>"
    }

    static func slices(_ model: Model) -> String {
        var html = "<section id=\"slices\" class=\"wide\"><h2>Slices</h2><div class=\"panels\">"
        let scores = model.completed.map { $0.score! }
        for parameter in model.definition.space.searched {
            var chart = Chart(name: "slice-\(parameter.name)", width: 320, height: 220)
            let ys = Scale(values: scores, start: chart.plotBottom, end: chart.plotTop)
            var xLabels: [(Double, String)]?
            let positions: [(Trial, Double)]
            switch parameter.domain {
            case .categorical(let values):
                let index = Dictionary(uniqueKeysWithValues: values.enumerated().map { ($1, Double($0)) })
                positions = model.completed.compactMap { trial in
                    trial.configuration[parameter.name].flatMap { index[$0] }.map { (trial, $0) }
                }
                xLabels = values.enumerated().map { (Double($0), $1.text) }
            case .bool:
                positions = model.completed.compactMap { trial in
                    trial.configuration[parameter.name].map { (trial, $0 == .bool(true) ? 1 : 0) }
                }
                xLabels = [(0, "false"), (1, "true")]
            default:
                positions = model.completed.compactMap { trial in
                    trial.configuration[parameter.name]?.numericValue.map { (trial, $0) }
                }
            }
            let logarithmic: Bool
            switch parameter.domain {
            case .int(_, _, _, let log), .float(_, _, let log): logarithmic = log
            default: logarithmic = false
            }
            let xs = Scale(
                values: xLabels.map { $0.map(\.0) } ?? positions.map(\.1), start: chart.plotLeft, end: chart.plotRight,
                logarithmic: logarithmic, padding: 0.08)
            chart.axes(x: xs, y: ys, xTitle: parameter.name, yTitle: model.objective.label, xLabels: xLabels)
            for (trial, x) in positions {
                chart.point(
                    x: xs(x), y: ys(trial.score!), kind: "completed",
                    tooltip: "trial \(trial.number): \(label(trial.score!))", radius: 3, trial: trial.number)
            }
            html += chart.svg
        }
        return html + "</div></section>"
    }

    /// The recommended trial's requests: time to first token and end-to-end latency against prompt length, the
    /// SLO's limit drawn across, the requests over it in red, failed ones as crosses.
    static func requests(_ model: Model, _ sample: RequestSample) -> String {
        let limits = model.limits(atLevel: sample.level)
        // Evenly thinned past 2,000 requests, so the page stays light.
        let stride = max(1, sample.points.count / 2000)
        let points = Swift.stride(from: 0, to: sample.points.count, by: stride).map { sample.points[$0] }
        var html =
            "<section id=\"requests\" class=\"wide\"><h2>Requests of trial \(model.link(sample.trial))\(sample.level.isEmpty ? "" : " at \(escape(sample.level))")</h2><div class=\"panels two\">"
        let charts: [(name: String, title: String, value: (RequestSample.Point) -> Double?)] = [
            ("ttft_ms", "time to first token, ms", { $0.ttftMs }),
            ("e2e_ms", "end-to-end latency, ms", { $0.e2eMs }),
        ]
        for (name, title, value) in charts {
            let limit = limits.filter { $0.key.hasPrefix(name + "_") }.flatMap(\.value).min()
            var chart = Chart(name: "requests-\(name)", width: 420, height: 260)
            let ys = Scale(
                values: points.compactMap(value) + (limit.map { [$0] } ?? []), start: chart.plotBottom,
                end: chart.plotTop)
            let xs = Scale(
                values: points.map { Double($0.promptTokens) }, start: chart.plotLeft, end: chart.plotRight,
                padding: 0.04)
            chart.axes(x: xs, y: ys, xTitle: "prompt tokens", yTitle: title)
            if let limit {
                chart.limit(y: ys(limit), title: "SLO: \(label(limit)) ms")
            }
            for point in points {
                let y = value(point) ?? ys.high
                let over = limit.map { y > $0 } ?? false
                chart.point(
                    x: xs(Double(point.promptTokens)), y: ys(min(y, ys.high)),
                    kind: point.succeeded ? "completed" : "failed",
                    tooltip: "\(point.promptTokens) prompt tokens: \(point.succeeded ? label(y) + " ms" : "failed")",
                    color: over ? "#c0392b" : nil, radius: 2.5)
            }
            html += chart.svg
        }
        let over = limits.isEmpty ? "" : " Red: over the SLO (the line)."
        return html
            + "</div><p class=\"legend\">One point per request of the recommended trial (\(sample.points.count) requests\(stride > 1 ? ", one in \(stride) drawn" : "")), at its prompt length.\(over) Crosses: failed requests.</p></section>"
    }

    static func failures(_ model: Model) -> String {
        var html = "<section id=\"failures\" class=\"wide\"><h2>Failures</h2>"
        let groups = failureGroups(model.trials)
        guard !groups.isEmpty else { return html + "<p>None.</p></section>" }
        html +=
            "<table class=\"failures\"><thead><tr><th>stage</th><th>cause (first trial's words)</th><th>trials</th><th>examples</th></tr></thead><tbody>"
        for group in groups {
            let examples = group.trials.prefix(5).map { model.link($0.number) }.joined(separator: " ")
            html +=
                "<tr><td>\(escape(group.stage))</td><td>\(escape(group.cause))</td><td>\(group.trials.count)</td><td>\(examples)</td></tr>"
        }
        return html + "</tbody></table></section>"
    }

    /// Failed and pruned trials by stage and cause, most frequent first; numbers aside, so
    /// "max_num_batched_tokens (3202) is smaller…" and "(1601)" are the same refusal.
    static func failureGroups(_ trials: [Trial]) -> [(stage: String, cause: String, trials: [Trial])] {
        let failed = trials.filter { $0.state == .failed || $0.state == .pruned }
        func cause(_ trial: Trial) -> String {
            guard let error = trial.error else { return "" }
            guard let cause = error.cause, !error.headline.contains(cause) else { return error.headline }
            return "\(error.headline): \(cause)"
        }
        let groups = Dictionary(grouping: failed) { trial in
            let stage = trial.state == .pruned ? "pruned" : trial.error?.stage.rawValue ?? "unknown"
            return stage + "\u{1F}" + cause(trial).replacing(#/[0-9]+(\.[0-9]+)?/#, with: "#")
        }
        return groups.sorted(by: { ($0.value.count, $1.key) > ($1.value.count, $0.key) }).map { key, trials in
            (key.split(separator: "\u{1F}", maxSplits: 1).first.map(String.init) ?? "", cause(trials[0]), trials)
        }
    }

    static func timeline(_ model: Model) -> String {
        guard let start = model.start else { return "" }
        let placed = model.trials.filter { $0.startedAt != nil }
        // Rows: each GPU a trial leased, else slots given greedily to trials as they start.
        let usesGPUs = placed.contains { !($0.gpus ?? []).isEmpty }
        var rows: [(trial: Trial, row: Int)] = []
        var labels: [String] = []
        if usesGPUs {
            let gpus = Array(Set(placed.flatMap { $0.gpus ?? [] })).sorted()
            labels = gpus.map { "GPU \($0)" }
            for trial in placed {
                for gpu in trial.gpus ?? [] { rows.append((trial, gpus.firstIndex(of: gpu)!)) }
            }
        } else {
            var free: [Date] = []
            for trial in placed.sorted(by: { $0.startedAt! < $1.startedAt! }) {
                let begin = trial.startedAt!
                if let slot = free.firstIndex(where: { $0 <= begin }) {
                    free[slot] = trial.finishedAt ?? .distantFuture
                    rows.append((trial, slot))
                } else {
                    free.append(trial.finishedAt ?? .distantFuture)
                    rows.append((trial, free.count - 1))
                }
            }
            labels = free.indices.map { "slot \($0 + 1)" }
        }
        let now = Date()
        let end = placed.map { $0.finishedAt ?? now }.max() ?? now
        var chart = Chart(name: "timeline", width: 1100, height: 60 + Double(labels.count) * 22)
        let xs = Scale(
            values: [0, end.timeIntervalSince(start)], start: chart.plotLeft, end: chart.plotRight, padding: 0)
        chart.axes(
            x: xs, y: Scale(values: [0], start: chart.plotBottom, end: chart.plotTop),
            xTitle: "seconds since the study started", yTitle: "", yTicks: false)
        for (index, text) in labels.enumerated() {
            chart.append(
                "<text class=\"tick\" x=\"\(coordinate(chart.plotLeft - 6))\" y=\"\(coordinate(chart.plotTop + Double(index) * 22 + 15))\" text-anchor=\"end\">\(escape(text))</text>"
            )
        }
        for (trial, row) in rows {
            let x0 = xs(trial.startedAt!.timeIntervalSince(start))
            let x1 = xs((trial.finishedAt ?? now).timeIntervalSince(start))
            chart.append(
                "<rect class=\"point span \(model.kind(trial))\" data-trial=\"\(trial.number)\" x=\"\(coordinate(x0))\" y=\"\(coordinate(chart.plotTop + Double(row) * 22 + 3))\" width=\"\(coordinate(max(1, x1 - x0)))\" height=\"16\"><title>trial \(trial.number) (\(trial.state.rawValue)): \(String(format: "%.1f", (trial.finishedAt ?? now).timeIntervalSince(trial.startedAt!))) s</title></rect>"
            )
        }
        return
            "<section id=\"timeline\" class=\"wide\"><h2>Timeline</h2>\(chart.svg)<p class=\"legend\">Each trial from its start to its end, per \(usesGPUs ? "GPU it leased" : "slot"): the parallel loop at work.</p></section>"
    }

    static func trialsTable(_ model: Model) -> String {
        let parameters = model.definition.space.parameters.filter(\.domain.isSearched).map(\.name)
        var metrics: [String] = []
        for name in model.objective.allGoals.flatMap({ $0.terms.map(\.metric) })
            + model.objective.constraints.map(\.metric)
        where !metrics.contains(name) {
            metrics.append(name)
        }
        var html =
            "<section id=\"trials\" class=\"wide\"><h2>Trials</h2><p><input id=\"filter\" type=\"search\" placeholder=\"filter rows (state, value, error…)\"></p>"
        html += "<div class=\"scroll\"><table class=\"trials sortable\" id=\"trials-table\"><thead><tr>"
        for column in ["trial", "state", "score"] + parameters + metrics + ["seconds", "error"] {
            html += "<th>\(escape(column))</th>"
        }
        html += "</tr></thead><tbody>"
        for trial in model.trials {
            var cells = [
                model.link(trial.number), escape(trial.state.rawValue), trial.score.map { escape(label($0)) } ?? "",
            ]
            for name in parameters {
                let parameter = model.definition.space[name]
                cells.append(trial.configuration[name].map { escape(parameter?.display($0) ?? $0.text) } ?? "")
            }
            for name in metrics { cells.append(trial.metrics[name].map { escape(label($0)) } ?? "") }
            cells.append(trial.timings["total"].map { escape(label($0)) } ?? "")
            let error = "<td class=\"error\">\(escape(trial.error?.summary ?? ""))</td>"
            html +=
                "<tr class=\"\(model.kind(trial))\" data-trial=\"\(trial.number)\">"
                + cells.map { "<td>\($0)</td>" }.joined() + error + "</tr>"
        }
        return html + "</tbody></table></div></section>"
    }

    /// The pages' stylesheet.
    public static let style = """
        body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1760px;color:#222;padding:0 16px}
        h1{margin:0 0 4px}h2{margin:28px 0 8px;border-bottom:1px solid #ddd}.meta,.legend{color:#555}
        #report{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(600px,100%),1fr));gap:0 32px}
        #report>section{min-width:0}#report>section.wide{grid-column:1/-1}
        svg.chart{width:100%;height:auto;background:#fff}.axis{stroke:#333}.gridline{stroke:#eee}.slo{stroke:#c0392b;stroke-dasharray:4 3}
        .tick{font-size:11px;fill:#444}.title{font-size:12px;fill:#222}
        circle.point{fill:#3b528b;opacity:.85}.point.front{fill:#d62728}.point.dominated{fill:#9aa7c7}
        .point.infeasible{fill:#bbb}path.point{stroke-width:2;fill:none}.point.failed{stroke:#d62728}
        .point.pruned{stroke:#ff7f0e}line.interval{stroke:#222;stroke-width:2}.caution{color:#8a4b00}.point.crashed{stroke:#7f0000;fill:#7f0000;fill-opacity:.35}path.point.baseline{fill:#2ca02c;stroke:#145214}
        circle.point.confirm{fill:#fff;stroke:#3b528b;stroke-width:1.5;opacity:1}.key.confirm{color:#3b528b}
        .best{fill:none;stroke:#d62728;stroke-width:1.5}.front-line{fill:none;stroke:#d62728;stroke-dasharray:4 3}
        polyline.line{fill:none;stroke-width:1.4;opacity:.75}rect.bar{fill:#21918c}
        rect.span{fill:#3b528b;opacity:.8}rect.span.failed,rect.span.crashed{fill:#d62728}rect.span.pruned{fill:#ff7f0e}
        rect.span.running{fill:#21918c}.key.completed{color:#3b528b}.key.failed{color:#d62728}.key.pruned{color:#ff7f0e}
        .key.crashed{color:#7f0000}.key.front{color:#d62728}.key.dominated{color:#9aa7c7}.key.infeasible{color:#bbb}
        .key.baseline{color:#2ca02c}.key.best-series{color:#3b528b}.key.baseline-series{color:#2ca02c}
        table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}
        th{cursor:pointer;background:#fafafa}tr.failed td,tr.crashed td{color:#a00}tr.pruned td{color:#b85c00}
        pre.command,code{background:#f5f5f5;white-space:pre-wrap;word-break:break-all}
        .panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(340px,100%),1fr));gap:8px 16px}
        .panels.two{grid-template-columns:repeat(auto-fill,minmax(min(600px,100%),1fr))}
        table.config th{cursor:default;background:none}.scroll{overflow-x:auto}td.error{min-width:420px;font-size:12px}
        [data-trial]{cursor:pointer}.has-selection .point:not(.selected){opacity:.25}
        .point.selected{opacity:1!important;stroke:#000;stroke-width:2.5}polyline.point.selected{stroke-width:4}
        tr.selected td{background:#fff3b0}#selection{position:sticky;top:0;z-index:1;background:#fff3b0;padding:0 8px}
        #selection:empty{display:none}td.reported{background:#eef3fb}table.levels th{cursor:default}tr.differs th{color:#8a4b00}tr.differs td{background:#fff7e6}polyline.series{fill:none;stroke-width:2}rect.cell{stroke:none}
        """

    /// Sorting (click a header) and filtering (the search box) of the trials table, in plain JavaScript.
    static let tableScript = """
        var autotuneSelected=null;
        function autotuneSelect(n){autotuneSelected=n;
        document.querySelectorAll('.selected').forEach(function(e){e.classList.remove('selected');});
        var bar=document.getElementById('selection');document.body.classList.toggle('has-selection',n!==null);
        if(n===null){if(bar){bar.textContent='';}return;}
        var marks=document.querySelectorAll('[data-trial="'+n+'"]');marks.forEach(function(e){e.classList.add('selected');});
        if(bar){bar.textContent='Trial '+n+' selected ('+marks.length+' marks in the charts and the table); click it again or press Esc to clear';}}
        document.addEventListener('click',function(ev){var t=ev.target.closest?ev.target.closest('[data-trial]'):null;
        if(!t||ev.target.closest('a,input,th')){return;}var n=t.getAttribute('data-trial');autotuneSelect(n===autotuneSelected?null:n);});
        document.addEventListener('keydown',function(ev){if(ev.key==='Escape'){autotuneSelect(null);}});
        function autotuneTables(){
        document.querySelectorAll('table.sortable').forEach(function(table){
        table.querySelectorAll('th').forEach(function(th,column){th.onclick=function(){
        var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
        var up=th.getAttribute('data-order')!=='asc';th.setAttribute('data-order',up?'asc':'desc');
        rows.sort(function(a,b){var x=a.cells[column].textContent,y=b.cells[column].textContent;
        var p=parseFloat(x.replace('#','')),q=parseFloat(y.replace('#',''));
        var r=(!isNaN(p)&&!isNaN(q))?p-q:x.localeCompare(y);return up?r:-r;});
        rows.forEach(function(row){body.appendChild(row);});};});});
        var box=document.getElementById('filter');if(box){box.oninput=function(){var t=box.value.toLowerCase();
        document.querySelectorAll('#trials-table tbody tr').forEach(function(row){
        row.style.display=row.textContent.toLowerCase().indexOf(t)>=0?'':'none';});};}
        if(autotuneSelected!==null){autotuneSelect(autotuneSelected);}}
        autotuneTables();document.body.setAttribute('data-ready','1');
        """
}
