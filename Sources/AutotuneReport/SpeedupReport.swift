/// One parallelism level of `autotune speedup`, as the chart needs it.
public struct SpeedupPoint: Sendable {
    /// Trials at once.
    public var parallel: Int
    /// Wall time of parallel 1 over this level's.
    public var speedup: Double
    /// Speedup over parallelism.
    public var efficiency: Double
    /// Median wall seconds.
    public var seconds: Double

    /// Creates a point.
    public init(parallel: Int, speedup: Double, efficiency: Double, seconds: Double) {
        self.parallel = parallel
        self.speedup = speedup
        self.efficiency = efficiency
        self.seconds = seconds
    }
}

/// The speedup and efficiency of one task at several parallelism levels, as a self-contained HTML page.
public enum SpeedupReport {
    /// The page: speedup against parallelism with the ideal line, and efficiency.
    public static func html(task: String, points: [SpeedupPoint]) -> String {
        let sorted = points.sorted { $0.parallel < $1.parallel }
        let levels = sorted.map { Double($0.parallel) }
        var speedup = Chart(name: "speedup")
        let top = max(levels.max() ?? 1, sorted.map(\.speedup).max() ?? 1)
        let xs = Scale(
            values: levels, start: speedup.plotLeft, end: speedup.plotRight, logarithmic: true, padding: 0.08)
        let ys = Scale(values: [0, top], start: speedup.plotBottom, end: speedup.plotTop)
        speedup.axes(
            x: xs, y: ys, xTitle: "trials at once", yTitle: "speedup over parallel 1",
            xLabels: sorted.map { (Double($0.parallel), String($0.parallel)) })
        let ideal = sorted.map { "\(coordinate(xs(Double($0.parallel)))),\(coordinate(ys(Double($0.parallel))))" }
        speedup.append("<polyline class=\"front-line\" points=\"\(ideal.joined(separator: " "))\"/>")
        let measured = sorted.map { "\(coordinate(xs(Double($0.parallel)))),\(coordinate(ys($0.speedup)))" }
        speedup.append("<polyline class=\"best\" points=\"\(measured.joined(separator: " "))\"/>")
        for point in sorted {
            speedup.point(
                x: xs(Double(point.parallel)), y: ys(point.speedup), kind: "completed",
                tooltip: "parallel \(point.parallel): \(label(point.speedup))× in \(label(point.seconds)) s")
        }
        var efficiency = Chart(name: "efficiency")
        let es = Scale(
            values: [0, max(1, sorted.map(\.efficiency).max() ?? 1)], start: efficiency.plotBottom,
            end: efficiency.plotTop)
        efficiency.axes(
            x: xs, y: es, xTitle: "trials at once", yTitle: "efficiency (speedup / parallel)",
            xLabels: sorted.map { (Double($0.parallel), String($0.parallel)) })
        for point in sorted {
            let x = xs(Double(point.parallel))
            efficiency.append(
                "<rect class=\"point bar\" x=\"\(coordinate(x - 10))\" y=\"\(coordinate(es(point.efficiency)))\" width=\"20\" height=\"\(coordinate(es(0) - es(point.efficiency)))\"><title>parallel \(point.parallel): \(label(point.efficiency))</title></rect>"
            )
        }
        return """
            <!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Speedup — \(escape(task))</title>
            <style>\(StudyReport.style)</style></head><body>
            <h1>Speedup of \(escape(task))</h1>
            <p class="meta">The same budget at each parallelism; the dashed line is the ideal (speedup = trials at once).</p>
            \(speedup.svg)
            \(efficiency.svg)
            </body></html>
            """
    }
}
