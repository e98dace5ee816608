import Autotune
import Foundation
import Testing

@testable import AutotuneReport

/// What a chart's axes and markers say.
@Suite struct ChartTests {
    /// Ticks are labelled at the precision their step needs: "5.4" and "5.6", not "5.400" and "5.600"; "0.5", not "0.500".
    @Test(arguments: [
        ([5.31, 5.93], ["5.4", "5.6", "5.8"]),
        ([0.0, 1.5], ["0.0", "0.5", "1.0", "1.5"]),
        ([1024.0, 16384], ["5000", "10000", "15000"]),
        ([0.001, 0.0042], ["0.001", "0.002", "0.003", "0.004"]),
    ])
    func ticksAreLabelledAtTheirStepsPrecision(values: [Double], labels: [String]) {
        let scale = Scale(values: values, start: 0, end: 100, padding: 0)
        #expect(scale.labelledTicks.map(\.1) == labels)
    }

    /// Failed, pruned and crashed trials are told apart by shape, not only by colour.
    @Test func failedPrunedAndCrashedMarkersHaveShapesOfTheirOwn() {
        var chart = Chart(name: "t", width: 100, height: 100)
        for kind in ["failed", "pruned", "crashed", "completed"] {
            chart.point(x: 50, y: 50, kind: kind, tooltip: kind)
        }
        let svg = chart.svg
        let shapes = ["failed", "pruned", "crashed"].map { kind -> String in
            let marker = svg.split(separator: "\n").first { $0.contains("class=\"point \(kind)\"") } ?? ""
            // The path's drawing, positions aside: the commands alone say the shape.
            return String(marker.filter { "MLZ".contains($0) })
        }
        #expect(Set(shapes).count == 3, "\(shapes)")
        #expect(svg.contains("<circle class=\"point completed\""))
    }
}

/// Parallel coordinates label a parameter where its lines meet the axis.
@Suite struct ParallelAxisTests {
    @Test func categoriesAndBooleansAreLabelledWhereTheirLinesAre() throws {
        let flag = Parameter("enable_chunked_prefill", .bool)
        #expect(StudyReport.axisLabels(of: flag).map(\.0) == [0.25, 0.75])
        #expect(StudyReport.axisLabels(of: flag).map(\.1) == ["false", "true"])
        let mode = Parameter("mode", .categorical([.string("a"), .string("b"), .string("c")]))
        let labels = StudyReport.axisLabels(of: mode)
        #expect(labels.map(\.1) == ["a", "b", "c"])
        #expect(zip(labels.map(\.0), [1.0 / 6, 0.5, 5.0 / 6]).allSatisfy { abs($0 - $1) < 1e-9 })
        let size = Parameter("max_num_seqs", .int(lower: 8, upper: 512, log: true))
        let ends = StudyReport.axisLabels(of: size)
        #expect(ends.map(\.1) == ["8", "512"])
        #expect(ends[0].0 > 0 && ends[1].0 < 1)
    }
}
