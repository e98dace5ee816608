import Foundation
import Testing

@testable import AutotuneReport

/// The requests a report draws come from the level the trial's figures come from.
@Suite struct RequestSampleTests {
    private func level(_ name: String, metrics: [String: Double], unsustained: String? = nil, prompts: [Int])
        -> [String: Any]
    {
        var level: [String: Any] = [
            "name": name, "seconds": 1, "metrics": metrics,
            "records": prompts.enumerated().map { index, prompt in
                [
                    "sentAt": Double(index), "timeToFirstToken": 0.001 * Double(prompt), "interTokenLatencies": [],
                    "endToEnd": 0.002 * Double(prompt), "promptTokens": prompt, "outputTokens": 4,
                    "succeeded": index != 0,
                ] as [String: Any]
            },
        ]
        if let unsustained { level["unsustained"] = unsustained }
        return level
    }

    @Test func theHighestLevelThatPassedIsDrawnElseTheFirst() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("benchmark-\(UUID()).json")
        defer { try? FileManager.default.removeItem(at: file) }
        let levels = [
            level("r2", metrics: ["sustained": 1, "slo_met": 1], prompts: [10, 20]),
            level("r4", metrics: ["sustained": 1, "slo_met": 1], prompts: [30, 40, 50]),
            level("r8", metrics: ["sustained": 0, "slo_met": 1], unsustained: "fell behind", prompts: [60]),
            level("r16", metrics: ["sustained": 1, "slo_met": 0], prompts: [70]),
        ]
        try JSONSerialization.data(withJSONObject: levels).write(to: file)
        let sample = try #require(RequestSample.read(benchmarkFile: file.path, trial: 7))
        #expect(sample.level == "r4" && sample.trial == 7)
        #expect(sample.points.map(\.promptTokens) == [30, 40, 50])
        #expect(sample.points.map(\.succeeded) == [false, true, true])
        #expect(sample.points[1].ttftMs == 40 && sample.points[1].e2eMs == 80)

        try JSONSerialization.data(withJSONObject: [levels[2], levels[3]]).write(to: file)
        #expect(RequestSample.read(benchmarkFile: file.path, trial: 7)?.level == "r8", "none passed: the first")
        try Data("{\"not\": \"the generator's\"}".utf8).write(to: file)
        #expect(RequestSample.read(benchmarkFile: file.path, trial: 7) == nil)
    }
}
