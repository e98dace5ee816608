import Autotune
import Foundation
import Testing

@testable import AutotuneReport

/// The contour's surface, a trial's figures by level, and the metrics a serving study's charts are drawn by.
@Suite struct AnalysisViewTests {
    /// Trials of `score = 3x − y` (no noise) over a third parameter that does nothing.
    func trials(count: Int) -> (SearchSpace, [Trial]) {
        let space = try! SearchSpace([
            Parameter("x", .float(lower: 0, upper: 1)), Parameter("y", .float(lower: 0, upper: 1)),
            Parameter("z", .int(lower: 1, upper: 8)),
        ])
        var generator = SeededGenerator(seed: 7)
        let trials = (0..<count).map { number -> Trial in
            let x = Double(generator.nextInt(below: 1000)) / 1000
            let y = Double(generator.nextInt(below: 1000)) / 1000
            var trial = Trial(
                number: number,
                configuration: Configuration([
                    "x": .double(x), "y": .double(y), "z": .int(1 + generator.nextInt(below: 8)),
                ]))
            trial.state = .completed
            trial.score = 3 * x - y
            return trial
        }
        return (space, trials)
    }

    /// The surface rises along the parameter across and falls along the one up, in the score's units: swapping
    /// the axes, or leaving the scores standardised, fails it.
    @Test func theSurfaceFollowsTheTwoParametersInTheScoresUnits() throws {
        let (space, trials) = trials(count: 30)
        let grid = try #require(
            ScoreSurface.predict(space: space, trials: trials, x: "x", y: "y", reference: trials[0], steps: 8))
        #expect(grid.means.count == 8 && grid.means.allSatisfy { $0.count == 8 })
        let corner = { (row: Int, column: Int) in grid.means[row][column] }
        #expect(corner(0, 7) > corner(0, 0) + 1.5, "across is x: 3x rises by about 2.6 over the grid")
        #expect(corner(7, 0) < corner(0, 0) - 0.5, "up is y: −y falls by about 0.9")
        // 3·(15/16) − 1/16 at the best corner, within the model's error.
        #expect(abs(corner(0, 7) - (3 * 15.0 / 16 - 1.0 / 16)) < 0.3, "\(corner(0, 7))")
        #expect(
            ScoreSurface.predict(space: space, trials: Array(trials.prefix(4)), x: "x", y: "y", reference: trials[0])
                == nil)
        #expect(ScoreSurface.predict(space: space, trials: trials, x: "x", y: "nope", reference: trials[0]) == nil)
    }

    /// A level's figures once: the unprefixed names repeat the reported level's and leave the trial's table; the
    /// levels come in order of load, `r4.5` read as a level though its name has a dot.
    @Test func aTrialsFiguresAreSplitByLevelAndShownOnce() {
        let metrics: [String: Double] = [
            "c8.ttft_ms_p99": 120, "c8.requests_per_s": 3, "c64.ttft_ms_p99": 900, "c64.requests_per_s": 9.5,
            "ttft_ms_p99": 900, "requests_per_s": 9.5, "max_concurrency": 64, "r4.5.ttft_ms_p99": 80,
        ]
        let (trial, levels, reported) = TrialFigures.split(metrics)
        #expect(reported == "c64")
        #expect(trial.map(\.0) == ["max_concurrency"])
        #expect(levels.map(\.name) == ["r4.5", "c8", "c64"])
        #expect(levels.first { $0.name == "r4.5" }?.metrics == ["ttft_ms_p99": 80])
        let html = TrialFigures.html(metrics)
        #expect(html.contains("<th>c64 (reported)</th>"))
        #expect(html.components(separatedBy: "<th>ttft_ms_p99</th>").count == 2, "listed once, as a row of levels")
    }

    /// With the benchmark file's levels (a capacity search keeps only the reported level's figures with the
    /// trial), the table has every level run, and the trial's own figures are what the levels do not say.
    @Test func theBenchmarkFilesLevelsFillTheTable() {
        let sample = RequestSample(
            trial: 3, level: "r6", points: [],
            levels: [
                .init(name: "r8", metrics: ["ttft_ms_p99": 700, "sustained": 0], unsustained: "a queue was building"),
                .init(name: "r6", metrics: ["ttft_ms_p99": 300, "sustained": 1, "slo_met": 1]),
            ])
        let html = TrialFigures.html(["ttft_ms_p99": 300, "max_request_rate": 6], sample: sample)
        #expect(html.contains("<th>r6 (reported)</th>") && html.contains("<th>r8</th>"))
        #expect(html.range(of: "<th>r6 (reported)</th>")!.lowerBound < html.range(of: "<th>r8</th>")!.lowerBound)
        let figures = String(html[..<html.range(of: "By load level")!.lowerBound])
        #expect(figures.contains("max_request_rate") && !figures.contains("ttft_ms_p99"))
        #expect(!sample.levels[0].passed && sample.levels[1].passed)
        #expect(sample.levels[0].load == 8 && sample.levels[0].isRate)
    }
}
