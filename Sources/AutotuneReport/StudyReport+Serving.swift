import Autotune
import Foundation

/// What a serving engineer reads off a serving study: throughput against latency over every trial with the SLO,
/// the load levels of the recommended trial against the SLO (where its capacity lies), and its requests' latency
/// distributions beside the baseline's.
extension StudyReport {
    /// The throughput metric a serving study's trials are drawn by: the objective's when it measures throughput,
    /// else output tokens per second (per GPU when the trials have it).
    static func throughputMetric(_ model: Model) -> String? {
        let measured = Set(model.trials.flatMap(\.metrics.keys))
        let goals = model.objective.allGoals.filter { $0.direction == .maximize }.flatMap { $0.terms.map(\.metric) }
        let throughput = ["_per_s", "_rate", "goodput"]
        if let metric = goals.first(where: { name in throughput.contains { name.contains($0) } }),
            measured.contains(metric)
        {
            return metric
        }
        return ["output_tokens_per_s_per_gpu", "output_tokens_per_s", "requests_per_s"].first(where: measured.contains)
    }

    /// The latency metric: the first latency a constraint or an objective bounds, else p99 time to first token.
    static func latencyMetric(_ model: Model) -> String? {
        let measured = Set(model.trials.flatMap(\.metrics.keys))
        let named =
            model.objective.constraints.filter { $0.maximum != nil }.map(\.metric)
            + model.objective.allGoals.filter { $0.direction == .minimize }.flatMap { $0.terms.map(\.metric) }
        if let metric = named.first(where: { $0.contains("_ms") && measured.contains($0) }) { return metric }
        return ["ttft_ms_p99", "e2e_ms_p99", "ttft_ms_p50"].first(where: measured.contains)
    }

    /// Every measured trial's throughput against its latency, with the SLO on the latency drawn: the trade-off
    /// the search moved along, and which trials were over the limit.
    static func throughputLatency(_ model: Model) -> String {
        guard let throughput = throughputMetric(model), let latency = latencyMetric(model) else { return "" }
        let measured = model.trials.filter { $0.isFinished }.compactMap { trial -> (Trial, Double, Double)? in
            guard let t = trial.metrics[throughput], let l = trial.metrics[latency], t.isFinite, l.isFinite else {
                return nil
            }
            return (trial, l, t)
        }
        guard !measured.isEmpty else { return "" }
        let limit = model.limits(atLevel: "")[latency]?.min()
        var chart = Chart(name: "throughput-latency", width: 560, height: 340)
        let xs = Scale(
            values: measured.map(\.1) + (limit.map { [$0] } ?? []), start: chart.plotLeft, end: chart.plotRight)
        let ys = Scale(values: measured.map(\.2), start: chart.plotBottom, end: chart.plotTop)
        chart.axes(x: xs, y: ys, xTitle: "↓ \(latency)", yTitle: "↑ \(throughput)")
        if let limit {
            chart.limit(x: xs(limit), title: "SLO: \(latency) ≤ \(label(limit))")
        }
        let recommended = model.input.result.recommended?.number
        for (trial, l, t) in measured {
            let kind = model.markerKind(trial, highlighted: trial.number == recommended, completed: "completed")
            chart.point(
                x: xs(l), y: ys(t), kind: kind,
                tooltip:
                    "trial \(trial.number) (\(trial.state.rawValue)): \(throughput) \(label(t)), \(latency) \(label(l))",
                radius: kind == "front" ? 5 : 4, trial: trial.number)
        }
        let slo = limit.map { ", the dashed line the limit on \(escape(latency)) (\(escape(label($0))))" } ?? ""
        return
            "<section id=\"throughput-latency\"><h2>Throughput against latency</h2>\(chart.svg)<p class=\"legend\">Every trial that measured both<span class=\"key front\"> ●</span> recommended <span class=\"key completed\">●</span> completed <span class=\"key infeasible\">●</span> broke a constraint <span class=\"key baseline\">◆</span> baseline\(slo). Up and to the left is better.</p></section>"
    }

    /// The levels a trial's benchmark ran, as offered load against the SLO's latency: the SLO line, the levels
    /// that passed (sustained and within the SLO), the ones that did not and why, and the one reported; the
    /// baseline's levels beside them when it ran several.
    static func capacity(_ model: Model, _ sample: RequestSample, baseline: RequestSample?) -> String {
        let series = [(sample, "trial")] + (baseline.map { [($0, "baseline")] } ?? [])
        guard sample.levels.count >= 2, sample.levels.allSatisfy({ $0.load != nil }) else { return "" }
        let limits = model.limits(atLevel: sample.level)
        let metric =
            ["ttft_ms_p99", "tpot_ms_p99", "itl_ms_p99", "e2e_ms_p99"].first { limits[$0] != nil }
            ?? limits.keys.sorted().first { sample.levels[0].metrics[$0] != nil } ?? "ttft_ms_p99"
        let limit = limits[metric]?.min()
        let levels = series.flatMap { entry in
            entry.0.levels.compactMap { level in
                level.metrics[metric].map { (entry.1, level, level.load!, $0) }
            }
        }
        guard !levels.isEmpty else { return "" }
        var chart = Chart(name: "capacity", width: 560, height: 340)
        let xs = Scale(values: levels.map(\.2), start: chart.plotLeft, end: chart.plotRight, logarithmic: true)
        let ys = Scale(
            values: levels.map(\.3) + (limit.map { [$0] } ?? []), start: chart.plotBottom, end: chart.plotTop)
        let unit = sample.levels[0].isRate ? "requests per second offered" : "concurrent requests"
        chart.axes(x: xs, y: ys, xTitle: unit, yTitle: metric)
        if let limit {
            chart.limit(y: ys(limit), title: "SLO: \(metric) ≤ \(label(limit))")
        }
        for (origin, role) in series {
            let own = levels.filter { $0.0 == role }.sorted { $0.2 < $1.2 }
            let line = own.map { "\(coordinate(xs($0.2))),\(coordinate(ys($0.3)))" }.joined(separator: " ")
            chart.append(
                "<polyline class=\"series \(role)-series\" data-series=\"\(role)\" points=\"\(line)\" style=\"stroke:\(role == "baseline" ? "#2ca02c" : "#3b528b")\"/>"
            )
            for (_, level, load, value) in own {
                let reported = level.name == origin.level
                let why =
                    level.passed
                    ? "passed" : level.unsustained.map { "not sustained: \($0)" } ?? "over the SLO or requests failed"
                chart.point(
                    x: xs(load), y: ys(value),
                    kind: role == "baseline" ? "baseline" : reported ? "front" : level.passed ? "completed" : "failed",
                    tooltip:
                        "\(role == "baseline" ? "baseline" : "trial \(origin.trial)") at \(level.name): \(metric) \(label(value)), \(why)\(reported ? " (reported)" : "")",
                    radius: reported ? 6 : 4)
            }
        }
        let chosen = sample.levels.first { $0.name == sample.level }
        let reportedText =
            chosen?.passed == true
            ? "its capacity, \(escape(sample.level)), passed and is reported"
            : "\(escape(sample.level)) is reported (no level passed)"
        return
            "<section id=\"capacity\"><h2>Load levels of trial \(model.link(sample.trial))</h2>\(chart.svg)<p class=\"legend\">Each level the benchmark ran, at the load it offered: <span class=\"key front\">●</span> \(reportedText) <span class=\"key completed\">●</span> passed (sustained, within the SLO) <span class=\"key failed\">✕</span> failed\(baseline == nil ? "" : " <span class=\"key baseline\">◆</span> the baseline's levels")\(limit == nil ? "" : "; the dashed line is the SLO").</p></section>"
    }

    /// The recommended trial's requests as distributions (the share of requests done within each latency), time
    /// to first token and end to end, beside the baseline's: where in the distribution tuning gained.
    static func latencyDistributions(_ model: Model, _ sample: RequestSample, baseline: RequestSample?) -> String {
        let series = [(sample, "trial")] + (baseline.map { [($0, "baseline")] } ?? [])
        let limits = model.limits(atLevel: sample.level)
        var html =
            "<section id=\"latency\" class=\"wide\"><h2>Latency of each request: trial \(model.link(sample.trial))\(baseline.map { " and the baseline (trial \(model.link($0.trial)))" } ?? "")</h2><div class=\"panels two\">"
        let charts: [(name: String, title: String, value: (RequestSample.Point) -> Double?)] = [
            ("ttft_ms", "time to first token, ms", { $0.succeeded ? $0.ttftMs : nil }),
            ("e2e_ms", "end-to-end latency, ms", { $0.succeeded ? $0.e2eMs : nil }),
        ]
        for (name, title, value) in charts {
            let curves = series.map { entry in (entry.1, entry.0.points.compactMap(value).sorted(), entry.0) }
            guard curves.contains(where: { !$0.1.isEmpty }) else { continue }
            let limit = limits.filter { $0.key.hasPrefix(name + "_") }.flatMap(\.value).min()
            var chart = Chart(name: "cdf-\(name)", width: 560, height: 300)
            let xs = Scale(
                values: curves.flatMap(\.1) + (limit.map { [$0] } ?? []), start: chart.plotLeft, end: chart.plotRight)
            let ys = Scale(values: [0, 1], start: chart.plotBottom, end: chart.plotTop, padding: 0.02)
            chart.axes(x: xs, y: ys, xTitle: title, yTitle: "share of requests done within")
            if let limit {
                chart.limit(x: xs(limit), title: "SLO: \(label(limit)) ms")
            }
            for (entry, values, origin) in curves where !values.isEmpty {
                // At most 400 steps: a curve of 10,000 requests draws the same at a 100th of the size.
                let stride = max(1, values.count / 400)
                var points = ["\(coordinate(xs(values[0]))),\(coordinate(ys(0)))"]
                for index in Swift.stride(from: 0, to: values.count, by: stride) + [values.count - 1] {
                    points.append(
                        "\(coordinate(xs(values[index]))),\(coordinate(ys(Double(index + 1) / Double(origin.points.count))))"
                    )
                }
                let p50 = values[values.count / 2]
                let p99 = values[min(values.count - 1, Int(Double(values.count) * 0.99))]
                chart.append(
                    "<polyline class=\"series \(entry)-series\" data-series=\"\(entry)\" points=\"\(points.joined(separator: " "))\" style=\"stroke:\(entry == "baseline" ? "#2ca02c" : "#3b528b")\"><title>\(entry == "baseline" ? "baseline" : "trial \(origin.trial)"): \(values.count) requests, p50 \(label(p50)) ms, p99 \(label(p99)) ms</title></polyline>"
                )
            }
            html += chart.svg
        }
        let failed = series.map { "\($0.0.points.count { !$0.succeeded })" }.joined(separator: " and ")
        return html
            + "</div><p class=\"legend\"><span class=\"key best-series\">━</span> trial \(sample.trial) at \(escape(sample.level))\(baseline.map { " <span class=\"key baseline-series\">━</span> the baseline (trial \($0.trial)) at \(escape($0.level))" } ?? ""): for each latency, the share of the level's requests done within it (failed requests, \(failed), never are)\(limits.isEmpty ? "" : "; dashed: the SLO's limit"). A curve further left is faster\(baseline == nil ? "" : "; where the two part shows which requests tuning helped").</p></section>"
    }
}
