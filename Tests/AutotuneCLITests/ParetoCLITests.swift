import Foundation
import Testing

/// A study of two objectives through the real binary: `best` prints the front with each trial's command,
/// compares the baseline, gives all of it as JSON, and `--pick` answers an SLO question after the fact.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ParetoCLITests {
    @Test func bestPrintsTheFrontAndPickAnswersAnSLOQuestion() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Throughput grows with the batch, and so does latency; batch 6 breaks the latency SLO.
        try """
        name: front
        parallel: 2
        parameters:
          batch: {type: int, min: 1, max: 6}
        objective:
          objectives: [{maximize: tps}, {minimize: ttft}]
          constraints: [{metric: ttft, max: 50}]
        baseline: {batch: 2}
        strategy: grid
        experiment:
          command: [/bin/sh, -c, 'echo "{{\\"tps\\": $(( {batch} * 100 )), \\"ttft\\": $(( {batch} * {batch} * 2 ))}}"']
        """.write(to: directory.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        let run = try await autotune(["run", "t.yaml", "--quiet"], in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("Pareto front of tps against ttft: 5 trials"), "\(run.stdout)")

        let best = try await autotune(["best", "front"], in: directory)
        #expect(best.status == 0, "\(best.stderr)")
        let lines = best.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains("the Pareto front of max tps, min ttft: 5 trials") == true, "\(best.stdout)")
        // Best first on the first objective; batch 6 (ttft 72) broke the SLO and is not on the front.
        let rows = lines.filter { $0.first?.isNumber == true }
        #expect(rows.count == 5)
        #expect(rows.first?.contains("500") == true && rows.first?.contains("50 ") == true, "\(rows)")
        // Commands are below the table, one per front trial, so the table stays narrow.
        #expect(rows.allSatisfy { !$0.contains("/bin/sh") })
        let commands = lines.filter { $0.hasPrefix("  #") }
        #expect(commands.count == 5 && commands.allSatisfy { $0.contains("/bin/sh -c") }, "\(best.stdout)")
        #expect(
            best.stdout.contains("Baseline (trial 0): tps 200, ttft 8; no front trial beats it on every objective."))

        let json = try await autotune(["best", "front", "--format", "json"], in: directory)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let front = try #require(report["front"] as? [[String: Any]])
        #expect(front.compactMap { $0["values"] as? [Double] }.map { $0[0] } == [500, 400, 300, 200, 100])
        #expect((report["objectives"] as? [[String: Any]])?.count == 2)

        let pick = try await autotune(["best", "front", "--pick", "ttft <= 20"], in: directory)
        #expect(pick.status == 0, "\(pick.stderr)")
        #expect(pick.stdout.contains("best trial meeting 'ttft <= 20':"), "\(pick.stdout)")
        #expect(pick.stdout.contains("batch: 3"), "\(pick.stdout)")
        let none = try await autotune(["best", "front", "--pick", "ttft <= 1"], in: directory)
        #expect(none.status != 0)
        #expect(none.stderr.contains("no completed trial of 'front' meets 'ttft <= 1'"), "\(none.stderr)")
        let typo = try await autotune(["best", "front", "--pick", "tft <= 10"], in: directory)
        #expect(typo.stderr.contains("did you mean 'ttft'?"), "\(typo.stderr)")
        let bad = try await autotune(["best", "front", "--pick", "ttft <="], in: directory)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--pick"), "\(bad.stderr)")
    }
}
