public import Autotune
import Foundation

/// Two or more studies of one objective on shared charts: each study's best so far against trials and against
/// wall-clock time (so parallel 4 against 1 reads as "as good, sooner"), and with several objectives each study's
/// front. The comparison's table is ``StudyComparison``'s (AutotuneApp); these are its pictures.
public enum ComparisonCharts {
    /// One study to draw.
    public struct Study: Sendable {
        /// Its name.
        public var name: String
        /// Its trials.
        public var trials: [Trial]
        /// What it found.
        public var result: StudyResult

        /// Creates one.
        public init(name: String, trials: [Trial], result: StudyResult) {
            self.name = name
            self.trials = trials
            self.result = result
        }
    }

    /// A study's colour, by its place in the comparison.
    static func colour(_ index: Int) -> String {
        ["#3b528b", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"][index % 8]
    }

    /// The charts' sections.
    public static func sections(objective: Objective, studies: [Study]) -> String {
        var html = ""
        if objective.isMultiObjective {
            html += fronts(objective: objective, studies: studies)
        } else {
            html +=
                "<section id=\"histories\" class=\"wide\"><h2>Best so far</h2><div class=\"panels two\">"
                + history(objective: objective, studies: studies, byTime: false)
                + history(objective: objective, studies: studies, byTime: true) + "</div>" + legend(studies)
                + "<p class=\"legend\">Each study's best score after each finished trial (confirmation runs left out), by trials and by seconds since its first trial started: a study at parallel 4 that reaches the same score in a quarter of the time is the line that rises as high, further left on the right-hand chart.</p></section>"
        }
        return html
    }

    static func legend(_ studies: [Study]) -> String {
        "<p class=\"legend\">"
            + studies.enumerated().map { index, study in
                "<span style=\"color:\(colour(index))\">━</span> \(escape(study.name))"
            }.joined(separator: " ") + "</p>"
    }

    /// Each study's best-so-far line, against the finished trials' count or the seconds since its start.
    static func history(objective: Objective, studies: [Study], byTime: Bool) -> String {
        var lines: [(index: Int, points: [(Double, Double, Int)])] = []
        for (index, study) in studies.enumerated() {
            let finished = study.trials.filter { $0.isFinished && $0.confirms == nil && $0.finishedAt != nil }
                .sorted { $0.finishedAt! < $1.finishedAt! }
            guard let start = study.trials.compactMap(\.startedAt).min() else { continue }
            var best: Double?
            var points: [(Double, Double, Int)] = []
            for (count, trial) in finished.enumerated() {
                guard trial.state == .completed, let score = trial.score, score.isFinite,
                    best.map({ objective.isBetter(score, than: $0) }) ?? true
                else { continue }
                best = score
                let x = byTime ? trial.finishedAt!.timeIntervalSince(start) : Double(count + 1)
                points.append((x, score, trial.number))
            }
            let end = byTime ? (finished.last?.finishedAt?.timeIntervalSince(start) ?? 0) : Double(finished.count)
            if let last = points.last { points.append((end, last.1, -1)) }
            lines.append((index, points))
        }
        var chart = Chart(name: byTime ? "compare-time" : "compare-trials", width: 640, height: 320)
        let all = lines.flatMap(\.points)
        let xs = Scale(values: all.map(\.0) + [0], start: chart.plotLeft, end: chart.plotRight, padding: 0.02)
        let ys = Scale(values: all.map(\.1), start: chart.plotBottom, end: chart.plotTop)
        chart.axes(
            x: xs, y: ys, xTitle: byTime ? "seconds since the study's first trial started" : "trials finished",
            yTitle: objective.label)
        for (index, points) in lines where !points.isEmpty {
            var path = "M\(coordinate(xs(points[0].0))),\(coordinate(ys(points[0].1)))"
            for point in points.dropFirst() { path += "H\(coordinate(xs(point.0)))V\(coordinate(ys(point.1)))" }
            chart.append(
                "<path class=\"series\" data-study=\"\(escape(studies[index].name))\" d=\"\(path)\" style=\"fill:none;stroke-width:2;stroke:\(colour(index))\"/>"
            )
            for (x, score, number) in points where number >= 0 {
                chart.point(
                    x: xs(x), y: ys(score), kind: "completed",
                    tooltip: "\(studies[index].name), trial \(number): \(label(score))", color: colour(index),
                    radius: 3.5)
            }
        }
        return chart.svg
    }

    /// Each study's front on one chart of the first two objectives.
    static func fronts(objective: Objective, studies: [Study]) -> String {
        let goals = objective.goals
        guard goals.count >= 2 else { return "" }
        var chart = Chart(name: "compare-fronts", width: 640, height: 380)
        let all = studies.flatMap { $0.result.front.map(\.values) }.filter { $0.count >= 2 }
        let xs = Scale(values: all.map { $0[0] }, start: chart.plotLeft, end: chart.plotRight)
        let ys = Scale(values: all.map { $0[1] }, start: chart.plotBottom, end: chart.plotTop)
        chart.axes(
            x: xs, y: ys, xTitle: "\(goals[0].direction == .maximize ? "↑" : "↓") \(goals[0].label)",
            yTitle: "\(goals[1].direction == .maximize ? "↑" : "↓") \(goals[1].label)")
        for (index, study) in studies.enumerated() {
            let front = study.result.front.filter { $0.values.count >= 2 }.sorted { $0.values[0] < $1.values[0] }
            if front.count > 1 {
                let points = front.map { "\(coordinate(xs($0.values[0]))),\(coordinate(ys($0.values[1])))" }
                chart.append(
                    "<polyline class=\"series\" data-study=\"\(escape(study.name))\" points=\"\(points.joined(separator: " "))\" style=\"fill:none;stroke-dasharray:4 3;stroke-width:1.5;stroke:\(colour(index))\"/>"
                )
            }
            for point in front {
                chart.point(
                    x: xs(point.values[0]), y: ys(point.values[1]), kind: "completed",
                    tooltip:
                        "\(study.name), trial \(point.number): \(goals[0].label) \(label(point.values[0])), \(goals[1].label) \(label(point.values[1]))",
                    color: colour(index))
            }
        }
        return "<section id=\"fronts\" class=\"wide\"><h2>Fronts</h2>\(chart.svg)\(legend(studies))</section>"
    }
}
