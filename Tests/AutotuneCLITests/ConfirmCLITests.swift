import Foundation
import Testing

/// `confirm:` from a task file to what `run`, `best` and `trials` print, with a command whose first measurement
/// of one configuration is a fluke.
@Suite(.timeLimit(.minutes(5))) struct ConfirmCLITests {
    @Test func bestRanksByTheRepeatsAndSaysTheEarlyWinnerDidNotHoldUp() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let counts = directory.appendingPathComponent("counts").path
        try FileManager.default.createDirectory(atPath: counts, withIntermediateDirectories: true)
        try """
        name: lucky
        parallel: 3
        parameters:
          x: [1, 2, 3, 4, 5, 6]
        objective: {maximize: score}
        strategy: grid
        confirm: {top: 3, repeats: 2}
        experiment:
          command: [/bin/sh, -c, 'f=\(counts)/{x}; n=$(cat $f 2>/dev/null || echo 0); echo $((n+1)) > $f; if [ {x} = 5 ] && [ $n = 0 ]; then s=100; else s={x}; fi; echo "{{\\"score\\": $s}}"']
        """.write(to: directory.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        let run = try await autotune(["run", "t.yaml", "--quiet"], in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("12 completed"), "\(run.stdout)")
        #expect(run.stdout.contains("Best (confirmed, the mean of its repeats): trial"), "\(run.stdout)")
        let best = try await autotune(["best", "lucky"], in: directory)
        #expect(best.status == 0, "\(best.stderr)")
        #expect(best.stdout.contains("confirmed best trial"), "\(best.stdout)")
        #expect(best.stdout.contains("x: 6"), "x = 6 holds up at 6; x = 5 repeats at 5: \(best.stdout)")
        #expect(best.stdout.contains("led the search (100) but did not hold up"), "\(best.stdout)")
        let json = try await autotune(["best", "lucky", "--format", "json"], in: directory)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let confirmed = try #require(object["confirmed"] as? [[String: Any]])
        #expect(confirmed.map { $0["mean"] as? Double } == [6, 5, 4])
        #expect(confirmed.map { $0["searchRank"] as? Int } == [2, 1, 3])
        #expect(object["rankedBy"] as? String == "mean")
        let trials = try await autotune(["trials", "lucky"], in: directory)
        #expect(trials.stdout.split(separator: "\n").first?.contains("confirms") == true, "\(trials.stdout)")
        // The report draws the six repeats as repeats: the best-so-far line is the search's (x = 5's fluke of
        // 100), never a repeat's; and the summary says how many of the twelve trials are repeats.
        let report = try await autotune(["report", "lucky", "-o", "r.html"], in: directory)
        #expect(report.status == 0, "\(report.stderr)")
        let html = try String(contentsOf: directory.appendingPathComponent("r.html"), encoding: .utf8)
        let history = try #require(html.components(separatedBy: "id=\"history\"").dropFirst().first)
            .components(separatedBy: "</svg>")[0]
        #expect(history.components(separatedBy: "class=\"point confirm\"").count - 1 == 6)
        #expect(history.components(separatedBy: "class=\"point completed\"").count - 1 == 6)
        #expect(history.contains("a repeat of trial"))
        #expect(html.contains("12 trials: 12 completed (6 of them confirmation runs)"), "summary")
    }
}
