import Autotune
import Foundation

/// The analysis optuna-dashboard offers beside importance: how the two most important parameters act together
/// (a contour of the model's prediction) and how the scores are distributed (their empirical distribution).
extension StudyReport {
    /// The predicted score over the two most important parameters, the others at the recommended trial's values,
    /// with the completed trials on top.
    static func contour(_ model: Model) -> String {
        var html = "<section id=\"contour\"><h2>The two most important parameters together</h2>"
        guard let estimate = model.importance, estimate.shares.count >= 2,
            let reference = model.input.result.recommended.flatMap({ best in
                model.trials.first { $0.number == best.number }
            }) ?? model.completed.first
        else { return html + "<p>Needs two searched parameters and five completed trials.</p></section>" }
        let (xName, yName) = (estimate.shares[0].name, estimate.shares[1].name)
        guard let xParameter = model.definition.space[xName], let yParameter = model.definition.space[yName],
            let grid = ScoreSurface.predict(
                space: model.definition.space, trials: model.trials, x: xName, y: yName, reference: reference)
        else { return html + "<p>The model could not be fitted to these trials.</p></section>" }
        var chart = Chart(name: "contour", width: 560, height: 440)
        let xs = Scale(values: [0, 1], start: chart.plotLeft + 40, end: chart.plotRight, padding: 0)
        let ys = Scale(values: [0, 1], start: chart.plotBottom, end: chart.plotTop, padding: 0)
        chart.axes(
            x: xs, y: ys, xTitle: xName, yTitle: "", xLabels: axisLabels(of: xParameter), yTicks: false)
        for (unit, text) in axisLabels(of: yParameter) {
            chart.append(
                "<text class=\"tick\" x=\"\(coordinate(xs(0) - 6))\" y=\"\(coordinate(ys(unit) + 4))\" text-anchor=\"end\">\(escape(text))</text>"
            )
        }
        chart.append(
            "<text class=\"title\" transform=\"translate(14 \(coordinate((chart.plotTop + chart.plotBottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yName))</text>"
        )
        let range = grid.range
        let cell = 1 / Double(grid.units.count)
        for (row, v) in grid.units.enumerated() {
            for (column, u) in grid.units.enumerated() {
                let mean = grid.means[row][column]
                var t =
                    range.upperBound > range.lowerBound
                    ? (mean - range.lowerBound) / (range.upperBound - range.lowerBound) : 1
                if model.objective.direction == .minimize { t = 1 - t }
                let (x0, x1) = (xs(u - cell / 2), xs(u + cell / 2))
                let (y0, y1) = (ys(v + cell / 2), ys(v - cell / 2))
                chart.append(
                    "<rect class=\"cell\" x=\"\(coordinate(x0))\" y=\"\(coordinate(y0))\" width=\"\(coordinate(x1 - x0 + 0.5))\" height=\"\(coordinate(y1 - y0 + 0.5))\" style=\"fill:\(ramp(t))\"><title>predicted \(escape(label(mean)))</title></rect>"
                )
            }
        }
        for trial in model.completed {
            guard let unit = try? model.definition.space.unitPoint(of: trial.configuration),
                let column = model.definition.space.searched.firstIndex(where: { $0.name == xName }),
                let row = model.definition.space.searched.firstIndex(where: { $0.name == yName })
            else { continue }
            chart.point(
                x: xs(unit[column]), y: ys(unit[row]), kind: trial.number == reference.number ? "front" : "completed",
                tooltip: "trial \(trial.number): \(label(trial.score!))",
                radius: trial.number == reference.number ? 5 : 3.5,
                trial: trial.number)
        }
        html += chart.svg
        return html
            + "<p class=\"legend\">The score a Gaussian process fitted to the completed trials predicts for each pair of values (dark: worst \(escape(label(model.objective.direction == .minimize ? range.upperBound : range.lowerBound))), yellow: best \(escape(label(model.objective.direction == .minimize ? range.lowerBound : range.upperBound)))), the other parameters at trial \(model.link(reference.number))'s values (red dot). The dots are the completed trials at their values of these two; their other parameters differ, so their scores need not match the colour under them.</p></section>"
    }

    /// The empirical distribution of the completed trials' scores: for each score, the share of trials at or
    /// below it, with the baseline's score marked.
    static func edf(_ model: Model) -> String {
        var html = "<section id=\"edf\"><h2>Distribution of scores</h2>"
        let scored = model.completed.filter { $0.confirms == nil }.sorted { $0.score! < $1.score! }
        guard scored.count >= 2 else { return html + "<p>Needs two completed trials.</p></section>" }
        var chart = Chart(name: "edf", width: 560, height: 300)
        let xs = Scale(values: scored.map { $0.score! }, start: chart.plotLeft, end: chart.plotRight)
        let ys = Scale(values: [0, 1], start: chart.plotBottom, end: chart.plotTop, padding: 0.02)
        chart.axes(x: xs, y: ys, xTitle: model.objective.label, yTitle: "share of completed trials at or below")
        var path = "M\(coordinate(xs(xs.low))),\(coordinate(ys(0)))"
        for (index, trial) in scored.enumerated() {
            let x = xs(trial.score!)
            path += "H\(coordinate(x))V\(coordinate(ys(Double(index + 1) / Double(scored.count))))"
        }
        path += "H\(coordinate(chart.plotRight))"
        chart.append("<path class=\"best\" d=\"\(path)\"/>")
        for (index, trial) in scored.enumerated() {
            chart.point(
                x: xs(trial.score!), y: ys(Double(index + 1) / Double(scored.count)), kind: "completed",
                tooltip: "trial \(trial.number): \(label(trial.score!)), \(index + 1) of \(scored.count) at or below",
                radius: 3, trial: trial.number)
        }
        if model.definition.baseline != nil, let baseline = model.trials.first(where: { $0.number == 0 }),
            let score = baseline.score, baseline.state == .completed
        {
            chart.limit(
                x: xs(score), title: "baseline (trial 0): \(label(score))", classes: "slo baseline-line",
                style: "stroke:#2ca02c")
        }
        let better = model.objective.direction == .maximize ? "right" : "left"
        html += chart.svg
        return html
            + "<p class=\"legend\">Each completed trial's score (confirmation runs left out) against the share of trials that scored at or below it; further \(better) is better\(model.definition.baseline != nil ? ", the green line is the baseline" : ""). A long flat stretch before the best means few trials came near it.</p></section>"
    }
}
